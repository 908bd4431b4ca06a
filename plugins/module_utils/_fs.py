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
import re
import stat

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


class RealDirs(dict):
    """``realpath`` of directories, each resolved once: packages put many files in one directory."""

    def __missing__(self, directory):
        real = self[directory] = os.path.realpath(directory)
        return real


def open_regular(name, dir_fd=None, follow=False):
    """A file a user may have replaced by anything (a lock file, an index, a config), opened for
    reading: never waiting for a FIFO's writer, and through a final symlink only with ``follow``
    (a config may be a link to a dotfiles checkout; else ELOOP).  Anything but a regular file is
    OSError ``EINVAL``: a FIFO locks nothing, and reading it would block a root run for everyone."""
    fd = os.open(name, (os.O_RDONLY | CLOEXEC if follow else READ_FLAGS) | os.O_NONBLOCK, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", name)
    return fd


def inside(path, top):
    """Whether normalized ``path`` is ``top`` or below it (string rule: resolve links first)."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def statvfs_free(path):
    """Free bytes of the filesystem holding ``path`` (``f_bfree``: what a removal gives back)."""
    vfs = os.statvfs(path)
    return vfs.f_bfree * vfs.f_frsize


# Kernel views, not storage: a cache or backup written there is lost, refused or never written.
PSEUDO_FILESYSTEMS = frozenset((
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "debugfs", "tracefs", "securityfs",
    "configfs", "pstore", "bpf", "efivarfs", "mqueue", "fusectl", "binfmt_misc", "autofs", "nsfs",
    "selinuxfs", "rpc_pipefs", "hugetlbfs"))
MOUNTINFO = "/proc/self/mountinfo"


def _unescape_mount(field):
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_of(path):
    """``(mount point, filesystem type)`` of the mount holding ``path`` (symlinks resolved), from
    this process's mount table; None when the table cannot be read."""
    real = os.path.realpath(path)
    found = None
    try:
        with open(MOUNTINFO) as table:
            for line in table:
                left, _sep, right = line.partition(" - ")
                fields = left.split()
                if len(fields) < 5 or not right:
                    continue
                point = _unescape_mount(fields[4])
                # The longest mount point wins; of equal ones the later mount, which hides the earlier.
                if inside(real, point) and (found is None or len(point) >= len(found[0])):
                    found = (point, right.split()[0])
    except (IOError, OSError):
        return None
    return found


def existing_ancestor(path):
    """``path`` itself when something is there (a symlink counts), else its nearest ancestor that is."""
    while not os.path.lexists(path):
        path = os.path.dirname(path)
    return path


def _problem(path):
    """The sentence saying why no entry can be created in the existing ``path``, or None.  The
    kernel's own check (``access``), so root's answer is root's: only a read-only mount, a
    pseudo-filesystem or ``chattr +i`` stops it."""
    if not os.path.isdir(path):
        return "%s exists and is not a directory" % path
    mount = mount_of(path)
    if mount is not None and mount[1] in PSEUDO_FILESYSTEMS:
        point, kind = mount
        if point == os.path.realpath(path):
            return "%s is a pseudo-filesystem (%s)" % (path, kind)
        return "%s is on a pseudo-filesystem (%s at %s)" % (path, kind, point)
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "%s is on a read-only filesystem" % path
        if not os.access(path, os.W_OK | os.X_OK):
            return "%s is not writable (permissions or immutable)" % path
    except OSError as exc:
        return "%s: %s" % (path, exc.strerror or exc)
    return None


def directory_problem(path):
    """Why ``path`` cannot be a directory new entries are created in, made with its missing
    parents if need be, as a sentence naming the path at fault (``/etc/hostname exists and is
    not a directory``, ``/sys is a pseudo-filesystem (sysfs)``, ``/mnt/ro is on a read-only
    filesystem``), or None.  Checked before any space check: such a place has no room to count."""
    return _problem(existing_ancestor(path))
