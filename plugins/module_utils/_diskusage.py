# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exact disk accounting: apparent bytes, on-disk bytes with every inode counted once, and the
bytes that removing a set of paths would really return to the filesystem.

An inode frees its blocks only when its last link goes, so ``reclaimable`` counts an inode only
when every one of its links was seen in the set.  Walks never follow symlinks (``lstat`` only) and
never cross into another filesystem unless asked, so a symlink loop or a link out of a cache is
counted as the small link it is.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import marshal
import os
import stat

from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import DIR_FLAGS

BLOCK = 512
# Walks shares the work with helper processes only when there is enough of it: forking and
# handing the inode maps back cost a few milliseconds.
PARALLEL_MIN_TOPS = 64
MAX_WORKERS = 4


# A multiply-linked inode is one int in its device's map: bytes on disk, st_nlink and the links
# seen so far, packed (one small object per inode instead of key and value tuples; facts over a
# million names stay within tens of megabytes).
_SEEN = (1 << 32) - 1
_NLINK_SHIFT = 32
_DISK_SHIFT = 64


class DiskUsage(object):
    """Running totals for a set of filesystem entries.

    Inodes with a single link are counted on the spot; only multiply-linked inodes are kept, per
    device, in a map ``st_ino -> packed (disk bytes, st_nlink, links seen)``, which keeps memory
    proportional to the hard links rather than to the files.
    """

    __slots__ = ("entries", "files", "apparent", "shared", "_single_disk", "_multi_disk", "_multi")

    def __init__(self):
        self.entries = 0
        self.files = 0
        self.apparent = 0
        # Bytes of files (all their links in the set) in extents shared with other files
        # (reflinks), as FIEMAP tells them (``rattler_cache``): on disk, but not freed with them.
        self.shared = 0
        self._single_disk = 0
        self._multi_disk = 0  # blocks of the multiply-linked inodes, each once
        self._multi = {}  # st_dev -> {st_ino: packed}

    def add(self, st):
        """Account one entry from its ``lstat`` result."""
        self.add_all((st,))

    def add_all(self, stats):
        """Account many ``lstat`` results; the walk's hot loop, so it works on locals."""
        entries = files = apparent = single = multi_disk = 0
        multi = self._multi
        inodes, dev = None, None
        is_reg, is_lnk, is_dir = stat.S_ISREG, stat.S_ISLNK, stat.S_ISDIR
        for st in stats:
            entries += 1
            mode = st.st_mode
            if is_reg(mode):
                files += 1
                apparent += st.st_size
            elif is_lnk(mode):
                apparent += st.st_size
            # A directory's link count counts its subdirectories, not names elsewhere: it is
            # freed with itself.
            nlink = st.st_nlink
            if nlink <= 1 or is_dir(mode):
                single += st.st_blocks * BLOCK
                continue
            if st.st_dev != dev:
                dev = st.st_dev
                inodes = multi.get(dev)
                if inodes is None:
                    inodes = multi[dev] = {}
            ino = st.st_ino
            packed = inodes.get(ino)
            if packed is None:
                disk = st.st_blocks * BLOCK
                inodes[ino] = (disk << _DISK_SHIFT) | (nlink << _NLINK_SHIFT) | 1
                multi_disk += disk
            else:
                inodes[ino] = packed + 1
        self.entries += entries
        self.files += files
        self.apparent += apparent
        self._single_disk += single
        self._multi_disk += multi_disk

    def update(self, other):
        """Fold another DiskUsage in, as if its entries had been added here."""
        self.entries += other.entries
        self.files += other.files
        self.apparent += other.apparent
        self.shared += other.shared
        self._single_disk += other._single_disk
        self._multi_disk += other._multi_disk
        for dev, theirs in other._multi.items():
            mine = self._multi.get(dev)
            if mine is None:
                self._multi[dev] = dict(theirs)
                continue
            # Inodes seen by both sets are rare (hard links between packages); fold the rest in bulk.
            shared = [(ino, mine[ino]) for ino in theirs.keys() & mine.keys()]
            mine.update(theirs)
            for ino, packed in shared:
                self._multi_disk -= packed >> _DISK_SHIFT
                mine[ino] = packed + (theirs[ino] & _SEEN)

    def state(self):
        """Plain data (ints and dicts) that :meth:`from_state` turns back into this usage."""
        return (self.entries, self.files, self.apparent, self._single_disk, self._multi_disk, self._multi)

    @classmethod
    def from_state(cls, state):
        usage = cls()
        usage.entries, usage.files, usage.apparent, usage._single_disk, usage._multi_disk, usage._multi = state
        return usage

    @property
    def on_disk(self):
        """Blocks allocated to the entries, each inode once (what ``du`` reports)."""
        return self._single_disk + self._multi_disk

    @property
    def reclaimable(self):
        """Bytes freed if every entry were removed: inodes with no link outside the set, less
        the extents they share with other files."""
        total = self._single_disk - self.shared
        for inodes in self._multi.values():
            for packed in inodes.values():
                if packed & _SEEN >= (packed >> _NLINK_SHIFT) & _SEEN:
                    total += packed >> _DISK_SHIFT
        return total

    @property
    def has_multiply_linked(self):
        """Whether some non-directory entry seen has ``st_nlink > 1``."""
        return any(self._multi.values())

    def inodes(self):
        """``((st_dev, st_ino), links_seen, st_nlink)`` for every multiply-linked inode seen."""
        for dev, inodes in self._multi.items():
            for ino, packed in inodes.items():
                yield (dev, ino), packed & _SEEN, (packed >> _NLINK_SHIFT) & _SEEN

    def as_dict(self):
        return {
            "entries": self.entries,
            "files": self.files,
            "apparent_bytes": self.apparent,
            "disk_bytes": self.on_disk,
            "reclaimable_bytes": self.reclaimable,
        }


def walk(top, usage=None, one_filesystem=True, on_error=None, on_entry=None):
    """Account ``top`` and everything below it into ``usage`` without following symlinks.

    ``on_error(path, exc)`` is called for entries that cannot be read; the walk goes on.
    ``on_entry(path, st)`` sees every accounted entry, so callers that also need names or times
    (entry counts, ages) get them from this same single pass.
    Returns the DiskUsage.
    """
    if usage is None:
        usage = DiskUsage()
    try:
        st = os.lstat(top)
    except OSError as exc:
        if on_error is not None:
            on_error(top, exc)
        return usage
    usage.add(st)
    if on_entry is not None:
        on_entry(top, st)
    if stat.S_ISDIR(st.st_mode):
        _walk_dir(top, st.st_dev if one_filesystem else None, usage, on_error, on_entry)
    return usage


def last_use(top):
    """When ``top`` was last used, as far as the filesystem keeps it: the newest of its own
    modification time, the modification times of the files and links below, and the access times
    of the regular files.

    A directory's times move whenever an entry is added or removed and whenever anyone lists it
    (this walk included), a link's access time whenever anyone reads it (a cleanup looking where
    it points included), so only the item's own modification time counts of them.  Reading no
    file, the walk moves no time it reads; on a filesystem mounted ``noatime`` access times stay
    old and modification times decide.
    """
    newest = []

    def on_entry(path, st):
        mode = st.st_mode
        times = [] if stat.S_ISDIR(mode) else [st.st_mtime, st.st_atime] if stat.S_ISREG(mode) else [st.st_mtime]
        if not newest:
            times.append(st.st_mtime)
        newest[:] = [max(newest + times)]

    walk(top, on_entry=on_entry)
    return newest[0] if newest else 0.0


class Walks(object):
    """Walks of many tops (a cache's extracted packages), shared out with forked helper processes
    as soon as this is created; :meth:`result` walks this process's share and collects.

    One helper per usable CPU up to ``MAX_WORKERS``: a walk is system calls and small objects,
    which one Python process cannot overlap, and on a real disk several walks keep several reads
    in flight.  Between creating and :meth:`result` the caller may do other work while the
    helpers walk.  A helper that fails is replaced by walking its share here.  Errors reach
    ``on_error`` in the order of ``tops`` whatever the scheduling.
    """

    def __init__(self, tops, on_error=None, workers=None):
        tops = list(tops)
        if workers is None:
            workers = usable_cpus() if len(tops) >= PARALLEL_MIN_TOPS else 1
        self.workers = max(1, min(workers, MAX_WORKERS, len(tops)))
        self.tops = tops
        self.on_error = on_error
        self.shares = [tops[index::self.workers] for index in range(self.workers)]  # sizes even out
        self.helpers = [_start_walker(share) for share in self.shares[1:]]

    def result(self):
        """A DiskUsage for each of the tops, in order, as :func:`walk` gives it."""
        done = [_walk_collecting(self.shares[0])]
        for helper, share in zip(self.helpers, self.shares[1:]):
            done.append(_finish_walker(helper) or _walk_collecting(share))
        ordered = [done[index % self.workers][index // self.workers] for index in range(len(self.tops))]
        if self.on_error is not None:
            for _state, errors in ordered:
                for path, code, message in errors:
                    self.on_error(path, OSError(code, message))
        return [DiskUsage.from_state(state) for state, _errors in ordered]


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _walk_collecting(tops):
    """``[(usage state, [(path, errno, message)])]`` for ``tops``: plain data a pipe can carry."""
    return [_walk_one(top) for top in tops]


def _walk_one(top):
    errors = []

    def on_error(path, exc):
        errors.append((path, getattr(exc, "errno", None), getattr(exc, "strerror", None) or str(exc)))

    return walk(top, on_error=on_error).state(), errors


def _start_walker(share):
    """Fork a process that walks ``share`` and writes the result to a pipe; ``(pid, read fd)``,
    or None when no process can be started (the share is then walked here)."""
    try:
        read_fd, write_fd = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # the helper: never returns, never runs the parent's exit handlers
        status = 1
        try:
            os.close(read_fd)
            data = marshal.dumps(_walk_collecting(share))
            while data:
                data = data[os.write(write_fd, data):]
            status = 0
        finally:
            os._exit(status)  # pylint: disable=protected-access
    os.close(write_fd)
    return pid, read_fd


def _finish_walker(helper):
    """The helper's result, or None if it failed in any way (its share is then walked here)."""
    if helper is None:
        return None
    pid, read_fd = helper
    chunks = []
    try:
        while True:
            chunk = os.read(read_fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    _pid, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    try:
        return marshal.loads(b"".join(chunks))
    except (EOFError, ValueError, TypeError):
        return None


# Directories are opened relative to their parent's descriptor and never through a symlink: a
# directory swapped for a link mid-walk fails to open instead of being followed.


def _walk_dir(top, dev, usage, on_error, on_entry):
    """Depth first, one open descriptor per level; every name is ``lstat``-ed relative to its
    directory's descriptor, so no path is resolved from the root again (what ``du`` does too)."""
    frame = _read_dir(top, None, top, dev, usage, on_error, on_entry)
    if frame is None:
        return
    stack = [frame]
    try:
        while stack:
            path, fd, subdirs = stack[-1]
            name = next(subdirs, None)
            if name is None:
                stack.pop()
                os.close(fd)
                continue
            frame = _read_dir(name, fd, path + "/" + name, dev, usage, on_error, on_entry)
            if frame is not None:
                stack.append(frame)
    finally:
        for _path, fd, _subdirs in stack:  # only after an exception (an on_entry callback's)
            os.close(fd)


def _read_dir(name, parent_fd, path, dev, usage, on_error, on_entry):
    """Open and account one directory's entries; ``(path, fd, iterator of its subdirectories)``,
    or None when it cannot be read (reported to ``on_error``).  The descriptor is closed here
    unless it is returned."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if on_error is not None:
            on_error(path, exc)
        return None
    try:
        subdirs = _account_dir(fd, path, dev, usage, on_error, on_entry)
    except BaseException:
        os.close(fd)
        raise
    if subdirs is None:
        os.close(fd)
        return None
    return path, fd, iter(subdirs)


def _account_dir(fd, path, dev, usage, on_error, on_entry):
    """Account the entries of the open directory ``fd``; its subdirectories to walk, or None."""
    try:
        names = os.listdir(fd)
        lstat = os.lstat
        try:
            stats = [lstat(child, dir_fd=fd) for child in names]
        except OSError:
            names, stats = _stat_each(names, fd, path, on_error)
    except OSError as exc:
        if on_error is not None:
            on_error(path, exc)
        return None
    is_dir = stat.S_ISDIR
    subdirs = [child for child, st in zip(names, stats) if is_dir(st.st_mode)]
    if subdirs and dev is not None:
        # Mount points of other filesystems are not part of the tree (like du -x).
        foreign = set(child for child, st in zip(names, stats) if is_dir(st.st_mode) and st.st_dev != dev)
        if foreign:
            subdirs = [child for child in subdirs if child not in foreign]
            kept = [(child, st) for child, st in zip(names, stats) if child not in foreign]
            names, stats = [k[0] for k in kept], [k[1] for k in kept]
    if on_entry is not None:
        for child, st in zip(names, stats):
            on_entry(path + "/" + child, st)
    usage.add_all(stats)
    return subdirs


def _stat_each(names, fd, path, on_error):
    """The slow path when some entry vanished or is unreadable: stat one by one."""
    kept, stats = [], []
    for name in names:
        try:
            stats.append(os.lstat(name, dir_fd=fd))
            kept.append(name)
        except OSError as exc:
            if on_error is not None:
                on_error(path + "/" + name, exc)
    return kept, stats


def filesystem(path):
    """Mount point, size and free space of the filesystem holding ``path`` (statvfs)."""
    path = os.path.realpath(path)
    dev = os.stat(path).st_dev
    mount = path
    while mount != "/":
        parent = os.path.dirname(mount)
        if os.stat(parent).st_dev != dev:
            break
        mount = parent
    vfs = os.statvfs(path)
    return {
        "mount": mount,
        "total_bytes": vfs.f_blocks * vfs.f_frsize,
        "free_bytes": vfs.f_bfree * vfs.f_frsize,
        "available_bytes": vfs.f_bavail * vfs.f_frsize,
    }
