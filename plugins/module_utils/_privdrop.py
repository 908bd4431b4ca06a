# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground floor: run one function with another user's credentials, so the kernel enforces them.

A root run that acts on something a user named (a cache in a home, a config's ``cache-dir``) must
not be able to do more there than that user could.  Checking ownership in Python is a race and a
rule to get wrong; dropping to the user's uid and groups in a forked child makes every ``open``,
``unlink`` and ``rmdir`` the kernel's decision.  The parent keeps root and gets back only what the
function returned (JSON-able; tuples come back as lists) or why it failed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import signal

_CHUNK = 65536


class PrivDropError(Exception):
    """The function failed in the child, the child died, or the credentials did not stick.

    ``errno`` is the child's ``OSError.errno`` when the function raised one, else None.
    """

    def __init__(self, message, errno=None):
        super(PrivDropError, self).__init__(message)
        self.errno = errno


def groups_of(name, gid):
    """The supplementary groups a login of user *name* (primary group *gid*) gets, as ``initgroups``."""
    return sorted(set(os.getgrouplist(name, gid)))


def _drop(uid, gid, groups):
    # Groups first, then the gid, then the uid: after setuid nothing else may be changed.
    os.setgroups(list(groups))
    os.setgid(gid)
    os.setuid(uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) \
            or sorted(set(os.getgroups())) != sorted(set(groups)):
        raise PrivDropError("credentials did not stick: uids %r, gids %r, groups %r"
                            % (os.getresuid(), os.getresgid(), os.getgroups()))
    if uid != 0:
        try:
            os.setuid(0)
        except OSError:
            return
        raise PrivDropError("uid 0 could be regained after dropping to uid %d" % uid)


def _child(write_fd, uid, gid, groups, func, args):
    try:
        _drop(uid, gid, groups)
        payload = json.dumps({"value": func(*args)})
    except BaseException as exc:  # pylint: disable=broad-except
        # Whatever the function does, the parent gets a message, never a second copy of itself.
        payload = json.dumps({"error": "%s: %s" % (type(exc).__name__, exc),
                              "errno": getattr(exc, "errno", None) if isinstance(exc, OSError) else None})
    data = payload.encode("ascii")
    while data:
        data = data[os.write(write_fd, data):]


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, _CHUNK)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def run_as(uid, gid, groups, func, *args):
    """``func(*args)`` in a child running as *uid*, *gid* and supplementary *groups*; its value.

    Raises PrivDropError with the child's exception (type and message), or how the child ended when
    it sent nothing.  Call it from a single-threaded process (a module is one).  The child inherits
    the parent's open file descriptors, and the kernel checks an fd's access when it was opened:
    open what the user must not reach only inside *func*, never before the call.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 70
        try:
            os.close(read_fd)
            _child(write_fd, uid, gid, groups, func, args)
            status = 0
        finally:
            os._exit(status)  # no atexit handlers, no flush of the parent's buffers
    os.close(write_fd)
    try:
        data = _read_all(read_fd)
    finally:
        os.close(read_fd)
    status = os.waitpid(pid, 0)[1]
    who = "as uid %d" % uid
    if os.WIFSIGNALED(status):
        raise PrivDropError("%s: the child was killed by signal %s" % (who, _signal_name(os.WTERMSIG(status))))
    if os.WEXITSTATUS(status) != 0 or not data:
        raise PrivDropError("%s: the child exited with status %d without an answer" % (who, os.WEXITSTATUS(status)))
    payload = json.loads(data.decode("ascii"))
    if "error" in payload:
        raise PrivDropError("%s: %s" % (who, payload["error"]), payload.get("errno"))
    return payload["value"]
