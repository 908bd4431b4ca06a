# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground floor: run a function with another user's credentials, so the kernel enforces them.

The child process drops groups, gid and uid (in that order, and checks they stuck) before it
calls the function; its return value (marshal-able plain data) or its error comes back over a
pipe.  Nothing the function does can exceed what that user could do by hand.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import marshal
import os
import traceback


class PrivilegeError(Exception):
    """The function could not run as that user, or failed there; the message says why."""


def _drop(uid, gid, groups):
    os.setgroups(list(groups))
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
        raise PrivilegeError("credentials did not stick")
    try:
        os.setuid(0)
    except OSError:
        return
    raise PrivilegeError("could regain root after dropping to uid %d" % uid)


def run_as(uid, gid, groups, func, *args):
    """``func(*args)`` in a forked child running as ``uid``/``gid``/``groups``; its return value."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        status = 0
        try:
            os.close(read_fd)
            _drop(uid, gid, groups)
            payload = marshal.dumps((True, func(*args)))
        except BaseException as exc:  # pylint: disable=broad-except  # reported to the parent
            status = 1
            text = str(exc) if isinstance(exc, (PrivilegeError, OSError)) else traceback.format_exc(limit=3)
            payload = marshal.dumps((False, "%s: %s" % (type(exc).__name__, text)))
        try:
            view = memoryview(payload)
            while len(view):
                view = view[os.write(write_fd, view):]
        finally:
            os._exit(status)
    os.close(write_fd)
    chunks = []
    try:
        while True:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        _pid, status = os.waitpid(pid, 0)
    try:
        ok, value = marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        raise PrivilegeError("the process running as uid %d died (status %d)" % (uid, status))
    if not ok:
        raise PrivilegeError("as uid %d: %s" % (uid, value))
    return value
