# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe removal inside a cache, the one deletion path of the collection.

Everything is done relative to directory file descriptors opened with ``O_NOFOLLOW``, so a symlink
swapped into a user-owned cache while root is deleting cannot redirect the removal elsewhere.
Directories are first renamed into the cache's ``.trash/`` (same filesystem, atomic), then removed:
a run killed at any instant leaves every package either complete under its own name or in the
trash, which the next run empties.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import stat
import time

from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import DIR_FLAGS, PathError, open_dir_nofollow, open_regular
from ansible_collections.pkgcache.fleet.plugins.module_utils._procs import hold_lock

LOCK_SUFFIX = ".lock"

TRASH_DIR = ".trash"


class RemovalError(PathError):
    """A removal refused: outside the cache, through a symlink, or the cache is locked."""


def rmtree_fd(dir_fd, name):
    """Remove ``name`` (relative to ``dir_fd``) and everything below it, never following symlinks."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        raise
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        with os.scandir(fd) as entries:
            names = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for child, is_dir in names:
            if is_dir:
                rmtree_fd(fd, child)
            else:
                try:
                    os.unlink(child, dir_fd=fd)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        raise
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


class CacheDir(object):
    """A cache directory held open for removal, with an exclusive lock for our own runs.

    The lock is ``flock`` on the directory itself: it serializes runs of this collection and
    leaves nothing behind in the cache.  Where the directory has its own lock file,
    ``<dirname>.lock`` (mamba locks its caches so, for a whole install), that is taken too, without
    waiting (:func:`_procs.hold_lock`): held by another process, the directory is refused as
    locked.  A lock file is only ever removed while we hold it (:meth:`remove`).
    """

    def __init__(self, path, lock=True, lock_timeout=30.0, expect=None):
        self.path = os.path.realpath(path)
        try:
            self.fd = open_dir_nofollow(self.path)
        except PathError as exc:
            raise RemovalError(str(exc))
        if expect is not None:
            # The directory that was planned, still owned as it was: a path swapped since then
            # (a link moved, a directory renamed in) is refused, not followed.
            st = os.fstat(self.fd)
            if (st.st_dev, st.st_ino, st.st_uid) != tuple(expect):
                os.close(self.fd)
                self.fd = None
                raise RemovalError("%s: not the directory that was planned (replaced or chowned since)" % self.path)
        self.locked = False
        self.created_trash = False
        self.own_lock = None  # fd of <dirname>.lock while we hold it
        self.drop_own_lock = False
        if lock:
            deadline = time.time() + lock_timeout
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self.locked = True
                    break
                except (IOError, OSError) as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.time() >= deadline:
                        self.close()
                        raise RemovalError("%s: locked by another run of pkgcache.fleet" % self.path)
                    time.sleep(0.2)
            self._take_own_lock()

    def _own_lock_name(self):
        return os.path.basename(self.path) + LOCK_SUFFIX

    def _take_own_lock(self):
        try:
            self.own_lock = open_regular(self._own_lock_name(), dir_fd=self.fd)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            self.close()
            raise RemovalError("%s: cannot open its lock file: %s" % (self.path, exc))
        if not hold_lock(self.own_lock):
            self.close()
            raise RemovalError("%s: locked, %s is held by another process" % (self.path, self._own_lock_name()))

    def close(self):
        if self.own_lock is not None:
            if self.drop_own_lock:
                os.unlink(self._own_lock_name(), dir_fd=self.fd)  # still held: nobody can be using it
            os.close(self.own_lock)
            self.own_lock = None
        if self.fd is not None:
            if self.created_trash:
                # Leave the cache as we found it: a trash dir we made and emptied goes too.
                try:
                    os.rmdir(TRASH_DIR, dir_fd=self.fd)
                except OSError:
                    pass
            os.close(self.fd)  # releases the flock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _trash_fd(self):
        try:
            os.mkdir(TRASH_DIR, 0o700, dir_fd=self.fd)
            self.created_trash = True
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        return os.open(TRASH_DIR, DIR_FLAGS, dir_fd=self.fd)

    def _remove_lock(self, parent, name, top):
        """Unlink a lock file only while holding it ourselves (taken without waiting)."""
        if top and name == self._own_lock_name() and self.own_lock is not None:
            self.drop_own_lock = True  # unlinked on close, after everything else
            return True
        fd = open_regular(name, dir_fd=parent)
        try:
            if not hold_lock(fd):
                raise RemovalError("%s: held by another process, not removed" % name)
            os.unlink(name, dir_fd=parent)
        finally:
            os.close(fd)
        return True

    def remove(self, relpath):
        """Remove ``relpath`` (inside the cache); directories go through the trash first.

        Every component of ``relpath`` is opened with ``O_NOFOLLOW``; the last is never followed.
        Returns False when it was already gone.
        """
        parts = [p for p in relpath.split("/") if p and p != "."]
        if not parts or ".." in parts:
            raise RemovalError("%s: refusing to remove %r" % (self.path, relpath))
        parent = os.dup(self.fd)
        try:
            for part in parts[:-1]:
                child = os.open(part, DIR_FLAGS, dir_fd=parent)
                os.close(parent)
                parent = child
            name = parts[-1]
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except OSError as exc:
                if exc.errno == errno.ENOENT:
                    return False
                raise
            if stat.S_ISREG(st.st_mode) and name.endswith(LOCK_SUFFIX):
                return self._remove_lock(parent, name, len(parts) == 1)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=parent)
                return True
            if len(parts) == 1 and name == TRASH_DIR:
                rmtree_fd(parent, name)
                return True
            trash = self._trash_fd()
            try:
                # A unique name in the trash: the rename is atomic, so the package vanishes whole.
                target = "%s.%d.%d" % (name, os.getpid(), int(time.time() * 1e6))
                os.rename(name, target, src_dir_fd=parent, dst_dir_fd=trash)
                rmtree_fd(trash, target)
            finally:
                os.close(trash)
            return True
        finally:
            os.close(parent)


class ToolLock(object):
    """A package tool's own exclusive lock on its cache (``flock`` on ``<directory>/<name>``: uv's
    ``.lock``, rattler's ``pkgs/.cache.lock``), held while we plan and remove, so the tool and this
    collection never interleave.  ``held_by_other`` says why the cache must be left alone: the
    tool holds the lock, or a symlink, FIFO or other non-file is in its place (whoever may write
    the cache put it there; it is neither followed nor waited on).  A cache without the lock file
    (a tool version that does not lock) is used unlocked."""

    def __init__(self, directory, name):
        self.fd = None
        self.held_by_other = None
        dir_fd = open_dir_nofollow(directory)
        try:
            self.fd = open_regular(name, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EINVAL):
                self.held_by_other = "%s is a symlink or not a regular file" % os.path.join(directory, name)
            elif exc.errno != errno.ENOENT:
                raise
        finally:
            os.close(dir_fd)
        if self.fd is not None:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    self.close()
                    raise
                self.held_by_other = "%s is held by another process" % os.path.join(directory, name)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
