# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground floor: copy-with-hash (one pass, kernel copy where possible) and the tree copy that
keeps hard links."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import stat

from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import CREATE_FLAGS, READ_FLAGS

CHUNK = 1 << 20
SMALL_CHUNK = 1 << 16
# copy_file_range errors that mean "not here", not "failed": fall back to writing the buffer.
NO_KERNEL_COPY = (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP)


class CopyError(Exception):
    """A tree cannot be copied or its copy does not match; the message names the path."""


class WriteFailed(Exception):
    """Writing the copy failed (as opposed to reading the source): the run must stop."""

    def __init__(self, error):
        super(WriteFailed, self).__init__(str(error))
        self.error = error


def hash_copy(src_path, dst_fd=None, want_md5=True, sync=True):
    """Hash ``src_path`` and, when ``dst_fd`` is given, copy it there, chunk by chunk.

    Each chunk is hashed from a read and copied by the kernel (``copy_file_range``, what ``cp``
    does) from the same just-read pages: about 2.5 times cheaper than writing the buffer back
    here.  A source changed while being read shows in its size or mtime (compare ``before`` and
    ``after``).  Where the kernel cannot copy (old kernels across filesystems) the hashed buffer is
    written instead.
    The source is opened without following a final symlink and must be a regular file, so a
    symlink swapped into a user's cache cannot make root copy some other file into the store.
    The copy is fsynced when ``sync``; a failure to write it raises :class:`WriteFailed`.
    ``src_path`` may be a file descriptor opened earlier (by another process's credentials), read
    from its current offset.  Returns ``(size, sha256, md5 or None, fstat before, fstat after)``.
    """
    fd = os.dup(src_path) if isinstance(src_path, int) else os.open(src_path, READ_FLAGS)
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", src_path)
        sha, md5 = hashlib.sha256(), (hashlib.md5() if want_md5 else None)
        # Sized to the file (a file that grew is read in more chunks): zeroing a 1 MiB buffer
        # for each of thousands of small package files cost more than hashing them.
        buf = bytearray(min(CHUNK, max(before.st_size + 1, SMALL_CHUNK)))
        view = memoryview(buf)
        size = 0
        kernel_copy = dst_fd is not None and hasattr(os, "copy_file_range")
        while True:
            count = os.readv(fd, [buf])
            if not count:
                break
            chunk = view[:count]
            sha.update(chunk)
            if md5 is not None:
                md5.update(chunk)
            if dst_fd is not None:
                kernel_copy = _copy_chunk(fd, dst_fd, size, chunk, kernel_copy)
            size += count
        after = os.fstat(fd)
        if dst_fd is not None and sync:
            try:
                os.fsync(dst_fd)
            except OSError as exc:
                raise WriteFailed(exc)
    finally:
        os.close(fd)
    return size, sha.hexdigest(), md5.hexdigest() if md5 is not None else None, before, after


def _copy_chunk(src_fd, dst_fd, offset, chunk, kernel_copy):
    """Put ``chunk`` (read from ``src_fd`` at ``offset``) at ``offset`` of ``dst_fd``; returns
    whether the kernel copy is still usable."""
    done = 0
    try:
        while kernel_copy and done < len(chunk):
            try:
                copied = os.copy_file_range(src_fd, dst_fd, len(chunk) - done, offset + done, offset + done)
            except OSError as exc:
                if exc.errno not in NO_KERNEL_COPY:
                    raise
                kernel_copy = False
                break
            if not copied:  # the source shrank: the size/mtime check rejects the file
                return kernel_copy
            done += copied
        while done < len(chunk):
            done += os.pwrite(dst_fd, chunk[done:], offset + done)
    except OSError as exc:
        raise WriteFailed(exc)
    return kernel_copy


def sha256_of(path):
    """sha256 of a regular file's content (read without following a final symlink)."""
    return hash_copy(path, want_md5=False)[1]


def _send(src_path, dst_fd, size):
    """Copy ``size`` bytes without reading them here (``sendfile``): for files nobody hashes."""
    src_fd = os.open(src_path, READ_FLAGS)
    try:
        offset = 0
        while offset < size:
            sent = os.sendfile(dst_fd, src_fd, offset, size - offset)
            if sent == 0:
                raise CopyError("%s: source file shrank while being copied" % src_path)
            offset += sent
    finally:
        os.close(src_fd)


class TreeCopier(object):
    """Copy trees the way ``cp -a`` does, hard links among the copied files kept as hard links.

    Files for which ``hashed(path)`` is true are hashed while they are copied; :meth:`verify`
    re-reads those copies against the hashes and checks every file's size.  Write errors are
    raised as the OSError they are (``ENOSPC`` names itself).
    """

    def __init__(self, hashed=lambda path: False):
        self.hashed = hashed
        self.links = {}  # (st_dev, st_ino) of a source file -> its first copy
        self.files = []  # (copy, size, sha256 or None)
        self.as_root = os.geteuid() == 0

    def copy(self, src, dst):
        st = os.lstat(src)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(dst, 0o700)
            with os.scandir(src) as entries:
                names = [e.name for e in entries]
            for name in names:
                self.copy(os.path.join(src, name), os.path.join(dst, name))
            os.chmod(dst, stat.S_IMODE(mode))
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1:
                first = self.links.get((st.st_dev, st.st_ino))
                if first is not None:
                    os.link(first, dst)
                    return
                self.links[(st.st_dev, st.st_ino)] = dst
            self._copy_file(src, dst, st)
            return
        else:
            raise CopyError("%s: not a file, directory or symlink" % src)
        if self.as_root:
            os.lchown(dst, st.st_uid, st.st_gid)
        os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

    def _copy_file(self, src, dst, st):
        sha256 = None
        dst_fd = os.open(dst, CREATE_FLAGS, 0o600)
        try:
            if self.hashed(src):
                sha256 = hash_copy(src, dst_fd, want_md5=False, sync=False)[1]
            else:
                _send(src, dst_fd, st.st_size)
            os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
            if self.as_root:
                os.fchown(dst_fd, st.st_uid, st.st_gid)
            os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        except WriteFailed as exc:
            raise exc.error
        finally:
            os.close(dst_fd)
        self.files.append((dst, st.st_size, sha256))

    def verify(self):
        """Every copy has its source's size; every hashed copy its source's sha256."""
        for path, size, sha256 in self.files:
            got = os.lstat(path).st_size
            if got != size:
                raise CopyError("verify: %s has %d bytes, its source %d" % (path, got, size))
            if sha256 is not None and sha256_of(path) != sha256:
                raise CopyError("verify: %s differs from its source (sha256)" % path)
