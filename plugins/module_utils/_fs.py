# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground floor: file handles that never follow a symlink, and the one "is this inside that" rule.

Files whose names start with ``_`` know nothing of conda or pip; they are the filesystem and
process primitives the domain files build on.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# A directory opened by name relative to its parent: a symlink in its place fails with ELOOP.
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | CLOEXEC
# A directory passed through on the way (search permission is enough, as for any path lookup).
_PASS_FLAGS = getattr(os, "O_PATH", os.O_RDONLY) | os.O_DIRECTORY | os.O_NOFOLLOW | CLOEXEC
# A file read without following a final symlink.
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | CLOEXEC
# A new file that must not exist yet (no symlink or stale file is ever written through).
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | CLOEXEC


class PathError(Exception):
    """A path that cannot be opened safely (relative, or a symlink on the way)."""


def open_dir_nofollow(path):
    """Open an absolute directory path component by component, refusing any symlink on the way."""
    path = os.path.normpath(path)
    if not os.path.isabs(path):
        raise PathError("%s: not an absolute path" % path)
    parts = [p for p in path.split("/") if p]
    fd = os.open("/", DIR_FLAGS if not parts else _PASS_FLAGS)
    try:
        for index, part in enumerate(parts):
            try:
                child = os.open(part, DIR_FLAGS if index == len(parts) - 1 else _PASS_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise PathError("%s: a component is a symlink or not a directory" % path)
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def inside(path, top):
    """Whether normalized ``path`` is ``top`` or below it (string rule: resolve links first)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def statvfs_free(path):
    """Free bytes of the filesystem holding ``path`` (``f_bfree``: what a removal gives back)."""
    vfs = os.statvfs(path)
    return vfs.f_bfree * vfs.f_frsize


def unwritable_reason(path):
    """Why no entry can be created in the existing directory ``path`` (a read-only mount,
    permissions, an immutable flag), or None.  The kernel's own check (``access``), so root's
    answer is root's: only a read-only mount or ``chattr +i`` stops it."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "read-only filesystem"
        if not os.access(path, os.W_OK | os.X_OK):
            return "not writable (permissions or immutable)"
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
