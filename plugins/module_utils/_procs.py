# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground floor: which processes use a path, whether a writer is alive, whether a lock is held."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os

from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import inside, open_regular


def process_paths():
    """``(pid, path)`` for the cwd and every open file of each other process, from /proc."""
    me = str(os.getpid())
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit() and p != me]
    except OSError:
        return []
    result = []
    for pid in pids:
        base = "/proc/%s" % pid
        try:
            links = [os.path.join(base, "cwd")]
            links.extend(os.path.join(base, "fd", fd) for fd in os.listdir(base + "/fd"))
        except OSError:
            continue
        for link in links:
            try:
                result.append((pid, os.readlink(link)))
            except OSError:
                continue
    return result


def process_using(path, paths=None):
    """The first process whose cwd or an open file lies inside ``path`` (from ``paths``, as
    :func:`process_paths` returns them, or read now)."""
    for pid, target in process_paths() if paths is None else paths:
        if inside(target, path.rstrip("/") or "/"):
            return "%s (%s)" % (pid, _comm("/proc/%s" % pid))
    return None


def _comm(base):
    try:
        with open(base + "/comm") as handle:
            return handle.read().strip()
    except (OSError, IOError):
        return "?"


def pid_alive(pid):
    """Whether a process of this host (namespace) has that pid."""
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


def lock_is_held(path):
    """Whether another process holds a lock on the lock file ``path`` (see :func:`hold_lock`);
    a missing file (or a symlink in its place) is held by no one, one that cannot be opened (or is
    a FIFO, which is never waited on) is taken as held: what cannot be told stays."""
    try:
        fd = open_regular(path)
    except OSError as exc:
        return exc.errno not in (errno.ENOENT, errno.ELOOP, errno.ENOTDIR)
    try:
        return not hold_lock(fd)
    finally:
        os.close(fd)  # drops whatever the test took


def hold_lock(fd):
    """Lock an open lock file (read access is enough) against every tool that writes under it,
    without waiting: an ``flock`` (this collection, and tools that lock so) and a POSIX record
    lock on the whole file (mamba locks byte 21 with ``fcntl(F_SETLK)``, which ``flock`` neither
    sees nor conflicts with).  Both are shared: they exclude the exclusive locks those tools take, and
    need no write access.  False when another process holds either; closing ``fd`` releases them."""
    return _try_lock(fcntl.lockf, fd, fcntl.LOCK_SH | fcntl.LOCK_NB) and \
        _try_lock(fcntl.flock, fd, fcntl.LOCK_SH | fcntl.LOCK_NB)


def _try_lock(lock, fd, flags):
    try:
        lock(fd, flags)
        return True
    except (IOError, OSError) as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
