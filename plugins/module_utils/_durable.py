# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground floor: data that reaches a final name only once it is on disk.

The one atomic writer (temp file, fsync, rename, fsync of the directory), directory fsync,
``syncfs``, and the sweep of temp files whose writer died.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os
import tempfile

from ansible_collections.pkgcache.fleet.plugins.module_utils._procs import pid_alive


def write_all(fd, view):
    """Write every byte of ``view`` (a memoryview) to ``fd``."""
    while len(view):
        view = view[os.write(fd, view):]


def unlink_quiet(path):
    try:
        os.unlink(path)
    except OSError:
        pass


TEMP_STEM_BYTES = 200


def _stat(path):
    try:
        return os.stat(path)
    except OSError:
        return None


def _temp_beside(final):
    """A hidden temp file next to *final*, named after it as far as a file name's 255 bytes allow
    (a final name near that limit would otherwise make the temp name too long)."""
    stem = os.path.basename(final)
    if len(os.fsencode(stem)) > TEMP_STEM_BYTES:
        stem = os.fsdecode(os.fsencode(stem)[:TEMP_STEM_BYTES])
    return tempfile.mkstemp(prefix="." + stem + ".", dir=os.path.dirname(final))


def write_atomic(path, data, uid=None, gid=None, mode=0o644, keep_existing=True, temp=None):
    """Replace ``path`` with ``data`` (text is written as UTF-8): temp file, fsync, rename, fsync
    of the directory.  Readers see the old content or the new, never a part.

    With ``keep_existing`` an existing file keeps its owner and mode, and a symlink stays a
    symlink (its target is replaced); otherwise ``path`` itself is replaced.  A new file gets
    ``uid``/``gid`` and ``mode`` (None: as ``temp`` created it); a missing directory is created
    and given ``uid``/``gid``.  ``temp`` makes the temp file, ``() -> (fd, path)`` on the same
    filesystem (a caller that sweeps its own leftovers names them); by default a hidden file
    next to the final name.  Returns the path written.
    """
    final = os.path.realpath(path) if keep_existing else path
    directory = os.path.dirname(final)
    existing = _stat(final) if keep_existing else None
    if existing is not None:
        uid, gid, mode = existing.st_uid, existing.st_gid, existing.st_mode & 0o7777
    elif not os.path.isdir(directory):
        os.makedirs(directory)
        if uid is not None or gid is not None:
            os.chown(directory, -1 if uid is None else uid, -1 if gid is None else gid)
    fd, temp_path = (temp or (lambda: _temp_beside(final)))()
    try:
        try:
            write_all(fd, memoryview(data.encode("utf-8") if isinstance(data, str) else data))
            if mode is not None:
                os.fchmod(fd, mode)
            if uid is not None or gid is not None:
                os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp_path, final)
    except BaseException:
        unlink_quiet(temp_path)
        raise
    fsync_dir(directory)
    return final


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except (OSError, AttributeError):
        return None


def sync_filesystem(path):
    """``syncfs(2)`` on the filesystem holding ``path``: every dirty page and name on it reaches
    the disk in one call.  False when the C library lacks it (the caller then fsyncs file by
    file); an I/O error (disk full at writeback) raises OSError."""
    syncfs = getattr(_libc(), "syncfs", None)
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code), path)
    finally:
        os.close(fd)
    return True


def sweep_dead_temps(directory, prefix, suffix="", dir_fd=None):
    """Remove ``<prefix><pid>.*<suffix>`` temp files whose writer (on this host) is gone."""
    removed = []
    try:
        names = os.listdir(directory if dir_fd is None else dir_fd)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            try:
                os.unlink(name if dir_fd is not None else os.path.join(directory, name), dir_fd=dir_fd)
                removed.append(os.path.join(directory, name))
            except OSError:
                pass
    return removed
