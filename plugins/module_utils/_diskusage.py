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

import os
import stat

BLOCK = 512


class DiskUsage(object):
    """Running totals for a set of filesystem entries.

    Inodes with a single link are counted on the spot; only multiply-linked inodes are kept in a
    map (key ``(st_dev, st_ino)`` -> links seen), which keeps memory proportional to the hard links
    rather than to the files.
    """

    __slots__ = ("entries", "files", "apparent", "_single_disk", "_multi", "_multi_meta")

    def __init__(self):
        self.entries = 0
        self.files = 0
        self.apparent = 0
        self._single_disk = 0
        self._multi = {}
        self._multi_meta = {}

    def add(self, st):
        """Account one entry from its ``lstat`` result."""
        self.entries += 1
        mode = st.st_mode
        if stat.S_ISREG(mode):
            self.files += 1
            self.apparent += st.st_size
        elif stat.S_ISLNK(mode):
            self.apparent += st.st_size
        disk = st.st_blocks * BLOCK
        # A directory's link count counts its subdirectories, not names elsewhere: it is freed
        # with itself.
        if st.st_nlink <= 1 or stat.S_ISDIR(mode):
            self._single_disk += disk
            return
        key = (st.st_dev, st.st_ino)
        seen = self._multi.get(key)
        if seen is None:
            self._multi[key] = 1
            self._multi_meta[key] = (st.st_nlink, disk)
        else:
            self._multi[key] = seen + 1

    def update(self, other):
        """Fold another DiskUsage in, as if its entries had been added here."""
        self.entries += other.entries
        self.files += other.files
        self.apparent += other.apparent
        self._single_disk += other._single_disk
        for key, seen in other._multi.items():
            mine = self._multi.get(key)
            if mine is None:
                self._multi[key] = seen
                self._multi_meta[key] = other._multi_meta[key]
            else:
                self._multi[key] = mine + seen

    @property
    def on_disk(self):
        """Blocks allocated to the entries, each inode once (what ``du`` reports)."""
        return self._single_disk + sum(meta[1] for meta in self._multi_meta.values())

    @property
    def reclaimable(self):
        """Bytes freed if every entry were removed: inodes with no link outside the set."""
        total = self._single_disk
        for key, seen in self._multi.items():
            nlink, disk = self._multi_meta[key]
            if seen >= nlink:
                total += disk
        return total

    @property
    def has_multiply_linked(self):
        """Whether some non-directory entry seen has ``st_nlink > 1``."""
        return bool(self._multi)

    def inodes(self):
        """``(key, links_seen, st_nlink)`` for every multiply-linked inode seen."""
        for key, seen in self._multi.items():
            yield key, seen, self._multi_meta[key][0]

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


def _walk_dir(top, dev, usage, on_error, on_entry):
    stack = [top]
    while stack:
        path = stack.pop()
        try:
            it = os.scandir(path)
        except OSError as exc:
            if on_error is not None:
                on_error(path, exc)
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    if on_error is not None:
                        on_error(entry.path, exc)
                    continue
                if dev is not None and st.st_dev != dev:
                    continue
                usage.add(st)
                if on_entry is not None:
                    on_entry(entry.path, st)
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)


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


def human_bytes(count):
    """``1536`` -> ``"1.5 KiB"``: for one-line summaries; results keep exact integers."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024.0
