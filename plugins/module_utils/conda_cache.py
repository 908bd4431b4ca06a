# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A conda package cache (one ``pkgs_dir``) and its items: tarballs, extracted packages, index
cache, logs, trash, partial downloads, locks (``conda/core/package_cache_data.py``).

Both layouts are read: conda's flat one (``<pkgs_dir>/<dist>/``, ``<dist>.conda``) and mamba
>= 2.6's channel folders (``<pkgs_dir>/https/<host>/<channel>/<subdir>/<dist>/``, see
``conda_mamba.cache_folder``), where an item's ``relpath`` has the folders in it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_mamba
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import (
    CATEGORIES, LOCK_SUFFIX, MAMBA_TRASH_SUFFIX, PARTIAL_SUFFIX, URLS_TXT, strip_tarball_suffix)


class CacheEntry(object):
    """One removable item of a cache: a tarball, a partial download, a lock, a log, an index file,
    a trash item, or (subclass) an extracted package.  ``relpath`` is relative to the cache."""

    __slots__ = ("cache", "relpath", "category", "mtime", "_usage")

    def __init__(self, cache, relpath, category, mtime, usage=None):
        self.cache = cache
        self.relpath = relpath
        self.category = category
        self.mtime = mtime
        self._usage = usage

    @property
    def usage(self):
        """The item's DiskUsage; a directory is walked on first use, so a cleanup sizes only the
        items it considers (packages no environment references) while facts size them all.
        Problems become warnings of the scan that listed the item."""
        if self._usage is None:
            self._usage = walk(self.path, on_error=self.cache.warnings.path_error)
        return self._usage

    @usage.setter
    def usage(self, usage):
        self._usage = usage

    @property
    def sized(self):
        return self._usage is not None

    @property
    def path(self):
        return os.path.join(self.cache.path, self.relpath)

    @property
    def dist(self):
        """The ``<name>-<version>-<build>`` a package item stands for, else its file name."""
        name = os.path.basename(self.relpath)
        return strip_tarball_suffix(name) or name


class ExtractedPackage(CacheEntry):
    """``<pkgs_dir>/<dist>/`` with ``info/index.json``: what environments link their files from."""

    __slots__ = ()

    def __init__(self, cache, relpath, mtime):
        super(ExtractedPackage, self).__init__(cache, relpath, "extracted", mtime)

    @property
    def has_shared_files(self):
        """conda clean --packages keeps a package only when some file has st_nlink > 1."""
        return self.usage.has_multiply_linked


# Top-level directories whose children are items of a category.
_CATEGORY_DIRS = {"cache": "index_cache", ".logs": "logs", ".trash": "trash"}


class PackageCache(object):
    """One pkgs_dir, scanned once: every top-level entry falls into exactly one category."""

    def __init__(self, path):
        self.path = os.path.normpath(path)
        # The configured path itself may be a symlink (a cache moved by hand); nothing inside it
        # is ever followed.
        self.exists = os.path.isdir(self.path)
        self.entries = dict((name, []) for name in CATEGORIES if name != "unused")
        self.other = []  # entries of no category (urls.txt, unknown files and dirs)
        self.other_usage = DiskUsage()  # the category directories themselves
        self.root_stat = None
        self.unused = []
        self.warnings = None  # where the items' walks report problems; set by the scan
        self.files_only = False  # scanned by scan_tarballs
        self._usage = {}

    @property
    def extracted(self):
        return self.entries["extracted"]

    @property
    def tarballs(self):
        return self.entries["tarballs"]

    @property
    def conda_writable(self):
        """conda writes to a cache only if ``urls.txt`` exists and is writable (no file is opened)."""
        urls = os.path.join(self.path, URLS_TXT)
        return os.path.isfile(urls) and os.access(urls, os.W_OK)

    def scan(self, warnings, files_only=False):
        """List and classify the cache's items (each is sized when first asked, see
        :attr:`CacheEntry.usage`); never follows a symlink out of the cache.  ``files_only``:
        see :meth:`scan_tarballs`."""
        if not self.exists:
            return self
        self.warnings = warnings
        self.root_stat = os.stat(self.path)
        self.files_only = files_only
        for entry, st in _entries(self.path, warnings):
            self._classify(entry, st, warnings)
        return self

    def scan_tarballs(self, warnings):
        """List the cache's files only (tarballs among them, at its top and in mamba's channel
        folders), each sized from its own lstat: no extracted package or category directory is
        walked, so ``extracted`` stays empty and the category totals are partial.  Enough for a
        backup; facts and cleanup use :meth:`scan`."""
        return self.scan(warnings, files_only=True)

    def _classify(self, entry, st, warnings, folder=""):
        """File one entry of the cache's top (``folder`` empty) or of a mamba channel folder."""
        name = entry.name
        relpath = folder + name
        if stat.S_ISDIR(st.st_mode):
            if not folder and name in _CATEGORY_DIRS:
                if not self.files_only:
                    self._scan_category(entry, st, warnings)
            elif os.path.isfile(os.path.join(entry.path, "info", "index.json")):
                if not self.files_only:
                    self.entries["extracted"].append(ExtractedPackage(self, relpath, st.st_mtime))
            elif not name.startswith(".") and (not folder or conda_mamba.split_relpath(relpath) is None):
                self._scan_folder(entry, st, relpath + "/", warnings)
            elif not self.files_only:
                self.other.append(CacheEntry(self, relpath, "other", st.st_mtime))
            return
        category = (_file_category(name) if stat.S_ISREG(st.st_mode) else None) or "other"
        usage = DiskUsage()
        usage.add(st)
        item = CacheEntry(self, relpath, category, st.st_mtime, usage)
        (self.other if category == "other" else self.entries[category]).append(item)

    def _scan_category(self, entry, st, warnings):
        self.other_usage.add(st)
        category = _CATEGORY_DIRS[entry.name]
        for child, child_st in _entries(entry.path, warnings):
            self.entries[category].append(CacheEntry(self, entry.name + "/" + child.name, category, child_st.st_mtime))

    def _scan_folder(self, entry, st, folder, warnings):
        """A directory that is not a package: mamba's channel folders (``https/<host>/...``) down
        to the subdir folders, whose entries are filed like the cache's top ones.  A directory
        inside a subdir folder that is not a package stays one item of ``other``; the folders
        themselves count in the cache's total only."""
        self.other_usage.add(st)
        for child, child_st in _entries(entry.path, warnings):
            self._classify(child, child_st, warnings, folder)

    def usage(self, category):
        """A category's items merged, each inode once; computed once per scan (merging the
        inode maps of thousands of packages is the costly part of sizing a cache)."""
        cached = self._usage.get(category)
        if cached is None:
            if category == "unused":
                items = self.unused
            elif category == "other":
                items = self.other
            else:
                items = self.entries[category]
            cached = self._usage[category] = DiskUsage()
            for item in items:
                cached.update(item.usage)
        return cached

    def total(self):
        """The whole cache, each inode once."""
        total = DiskUsage()
        if self.root_stat is not None:
            total.add(self.root_stat)
        for category in list(self.entries) + ["other"]:
            total.update(self.usage(category))
        total.update(self.other_usage)
        return total

    def category_facts(self):
        """Per category: how many items (packages, tarballs, files) and their byte totals."""
        facts = {}
        for name in CATEGORIES:
            facts[name] = self.usage(name).as_dict()
            facts[name]["count"] = len(self.unused if name == "unused" else self.entries[name])
        return facts

    def set_unused(self, verdicts):
        """Record which extracted packages :func:`find_unused` found unused."""
        self.unused = [p for p in self.extracted if verdicts[p.path].unused]
        self._usage.pop("unused", None)


def _file_category(name):
    if strip_tarball_suffix(name) is not None:
        return "tarballs"
    if name.endswith(PARTIAL_SUFFIX):
        return "partial"
    if name.endswith(LOCK_SUFFIX):
        return "locks"
    if name.endswith(MAMBA_TRASH_SUFFIX):
        return "trash"
    return None


def _entries(path, warnings):
    """``(DirEntry, lstat)`` of a directory's children, sorted by name; errors become warnings."""
    try:
        with os.scandir(path) as iterator:
            entries = sorted(iterator, key=lambda e: e.name)
    except OSError as exc:
        warnings.path_error(path, exc)
        return []
    result = []
    for entry in entries:
        try:
            result.append((entry, entry.stat(follow_symlinks=False)))
        except OSError as exc:
            warnings.path_error(entry.path, exc)
    return result
