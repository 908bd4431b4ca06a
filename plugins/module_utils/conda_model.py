# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The conda domain model: installations, package caches, environments and their references.

Names follow conda's own files (``conda/core/package_cache_data.py``, ``conda/models/records.py``):
a PackageCache holds Tarballs and ExtractedPackages; an Environment holds PrefixRecords.  The one
answer to "which extracted packages are unused" is :func:`find_unused`; every module that reports or
removes packages calls it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os
import pwd
import re
import stat

from ansible_collections.pkgcache.fleet.plugins.module_utils import _condarc
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import ANYONE, ROOT, namer_of
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, Walks, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT, is_clean

TARBALL_SUFFIXES = (".conda", ".tar.bz2")
PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
MAMBA_TRASH_SUFFIX = ".mamba_trash"
# What makes a directory a cache conda writes to (conda: writable only with urls.txt) and cleans.
URLS_TXT = "urls.txt"
CACHE_MARKERS = (URLS_TXT, "urls")
LINK_TYPES = {1: "hardlink", 2: "softlink", 3: "copy", 4: "directory"}

# Categories of a cache's content, in report order.  "unused" is a subset of "extracted".
CATEGORIES = ("tarballs", "extracted", "unused", "index_cache", "logs", "trash", "partial", "locks")
# What cleaning everything safe would remove (never "extracted": only its unused part).
RECLAIMABLE_CATEGORIES = ("tarballs", "unused", "index_cache", "logs", "trash", "partial", "locks")

ROOT_GLOBS = ("/opt/conda", "/opt/miniconda*", "/opt/miniforge*", "/opt/anaconda*",
              "/opt/mambaforge*", "/opt/micromamba", "/usr/local/*conda*", "/usr/local/miniforge*")
USER_ROOTS = ("miniconda3", "miniconda", "anaconda3", "miniforge3", "mambaforge", "micromamba")


def strip_tarball_suffix(fn):
    for suffix in TARBALL_SUFFIXES:
        if fn.endswith(suffix):
            return fn[: -len(suffix)]
    return None


def version_key(version, build=""):
    """An ordering key close to conda's VersionOrder: numeric parts compare as numbers,
    ``dev`` sorts before and ``post`` after everything else, then the build number."""
    parts = []
    for token in re.findall(r"\d+|[a-z]+", (version or "").lower()):
        if token.isdigit():
            parts.append((2, int(token), ""))
        elif token == "dev":
            parts.append((0, 0, token))
        elif token == "post":
            parts.append((3, 0, token))
        else:
            parts.append((1, 0, token))
    number = re.search(r"(\d+)$", build or "")
    return (parts, int(number.group(1)) if number else 0, build or "")


class Notice(str):
    """A warning about something read in full all the same: it leaves the state known."""


class Warnings(list):
    """Collected non-fatal problems, each naming the path it is about."""

    def path_error(self, path, exc):
        self.append("%s: %s" % (path, getattr(exc, "strerror", None) or exc))

    def notice(self, message):
        if message not in self:
            self.append(Notice(message))

    def blocking(self):
        """The warnings that mean something could not be known (every one but notices)."""
        return [w for w in self if not isinstance(w, Notice)]


def owner_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class PrefixRecord(object):
    """One ``conda-meta/<dist>.json``: what an environment links from which extracted package.

    Only what references need is kept: the dist (the file stem, so even a corrupt record names
    its package), the link type and the extracted package dir.
    """

    __slots__ = ("path", "dist", "link_type", "extracted_package_dir")

    def __init__(self, path, data=None):
        self.path = path
        self.dist = os.path.basename(path)[: -len(".json")]
        data = data or {}
        link = data.get("link") or {}
        self.link_type = LINK_TYPES.get(link.get("type"), "unknown") if isinstance(link, dict) else "unknown"
        epd = data.get("extracted_package_dir") or (link.get("source") if isinstance(link, dict) else None)
        self.extracted_package_dir = os.path.normpath(epd) if epd else None

    @classmethod
    def load(cls, path, warnings):
        """Read a record; a corrupt one still names its dist (its file stem), so it still protects."""
        try:
            with open(path, "rb") as handle:
                data = json.loads(handle.read().decode("utf-8", "surrogateescape"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, IOError) as exc:
            warnings.path_error(path, exc)
            return cls(path)
        except ValueError as exc:
            warnings.append("%s: corrupt PrefixRecord (%s); its package is treated as in use" % (path, exc))
            return cls(path)
        return cls(path, data)


class Environment(object):
    """A prefix with ``conda-meta/history``; its PrefixRecords say what it links from the caches."""

    def __init__(self, prefix, records, owner):
        self.prefix = prefix
        self.records = records  # None: not read (Host.load(tarballs_only=True))
        self.owner = owner

    @classmethod
    def load(cls, prefix, warnings, records=True):
        """``records=False`` finds the environment without reading its PrefixRecords (``records``
        is then None, so nothing can mistake it for an environment that references nothing)."""
        meta = os.path.join(prefix, "conda-meta")
        try:
            names = sorted(os.listdir(meta))
            owner = owner_name(os.stat(prefix).st_uid)
        except OSError as exc:
            warnings.path_error(meta, exc)
            return None
        if not records:
            return cls(prefix, None, owner)
        records = []
        for name in names:
            if name.endswith(".json"):
                records.append(PrefixRecord.load(os.path.join(meta, name), warnings))
        return cls(prefix, records, owner)

    def link_types(self):
        counts = {}
        for record in self.records:
            counts[record.link_type] = counts.get(record.link_type, 0) + 1
        return counts


def is_prefix(path):
    return os.path.isfile(os.path.join(path, "conda-meta", "history"))


def is_root_prefix(path):
    """A base installation rather than an environment: not inside some prefix's ``envs/``, and
    laid out as installers leave it (a ``pkgs/`` cache, or ``condabin/`` next to ``envs/``).
    Environments that have conda itself installed carry ``condabin/`` too, but no ``envs/``."""
    parent = os.path.dirname(path)
    if os.path.basename(parent) == "envs" and is_prefix(os.path.dirname(parent)):
        return False

    def has(name):
        return os.path.isdir(os.path.join(path, name))

    return has("pkgs") or (has("condabin") and has("envs"))


class Installation(object):
    """A conda root prefix: its version, and the configuration each user sees for it."""

    def __init__(self, root):
        self.root = root
        self.configs = {}  # user name -> EffectiveConfig

    @property
    def conda_version(self):
        for path in sorted(glob.glob(os.path.join(self.root, "conda-meta", "conda-[0-9]*.json"))):
            try:
                with open(path, **READ_TEXT) as handle:
                    return json.load(handle).get("version")
            except (OSError, IOError, ValueError):
                return os.path.basename(path).split("-")[1]
        return None

    def writable_by(self, user):
        """conda's root_writable: can this user write ``conda-meta/history``?"""
        return _may_write(os.path.join(self.root, "conda-meta", "history"), user)


def _may_write(path, user):
    try:
        st = os.stat(path)
    except OSError:
        return False
    if user.uid == 0:
        return True
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IWUSR)
    if st.st_gid == user.gid:
        return bool(st.st_mode & stat.S_IWGRP)
    return bool(st.st_mode & stat.S_IWOTH)


def read_environments_txt(user, warnings):
    """The prefixes a user's ``environments.txt`` lists.  A line that is not UTF-8 still names a
    directory (its raw bytes), so it is kept, and the file is warned about."""
    path = os.path.join(user.home, ".conda", "environments.txt")
    try:
        with open(path, **READ_TEXT) as handle:
            prefixes = [os.path.normpath(line.strip()) for line in handle if line.strip()]
    except (OSError, IOError) as exc:
        if os.path.exists(path):
            warnings.path_error(path, exc)
        return []
    if not all(is_clean(prefix) for prefix in prefixes):
        warnings.notice("%s: lines that are not UTF-8, read as raw bytes" % path)
    return prefixes


def discover_roots(users, explicit=(), warnings=None):
    """Every conda root prefix on the host, without running conda.

    Installer locations (system-wide and in each home) count when they are prefixes; entries of
    every user's ``~/.conda/environments.txt`` lead to their root (``<root>/envs/<name>``) or are
    roots themselves.  Explicit roots are taken as given (and warned about when not prefixes).
    """
    warnings = warnings if warnings is not None else Warnings()
    roots = []
    for path in explicit:
        path = os.path.normpath(path)
        if is_prefix(path):
            roots.append(path)
        else:
            warnings.append("%s: not a conda root prefix (no conda-meta/history)" % path)
    installers = []
    for pattern in ROOT_GLOBS:
        installers.extend(sorted(glob.glob(pattern)))
    for user in users:
        installers.extend(os.path.join(user.home, name) for name in USER_ROOTS)
    roots.extend(os.path.normpath(p) for p in installers if is_prefix(p))
    for user in users:
        for prefix in read_environments_txt(user, warnings):
            parent = os.path.dirname(prefix)
            if os.path.basename(parent) == "envs" and is_prefix(os.path.dirname(parent)):
                roots.append(os.path.dirname(parent))
            elif is_prefix(prefix) and is_root_prefix(prefix):
                roots.append(prefix)
    return _dedupe_real(roots)


def _dedupe_real(paths):
    seen, result = set(), []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            result.append(path)
    return result


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

    def scan(self, warnings):
        """List and classify the cache's items (each is sized when first asked, see
        :attr:`CacheEntry.usage`); never follows a symlink out of the cache."""
        if not self.exists:
            return self
        self.warnings = warnings
        self.root_stat = os.stat(self.path)
        for entry, st in _entries(self.path, warnings):
            self._classify(entry, st, warnings)
        return self

    def scan_tarballs(self, warnings):
        """List the cache's top-level files only (tarballs among them), each sized from its own
        lstat: no extracted package or category directory is walked, so ``extracted`` stays empty
        and the category totals are partial.  Enough for a backup; facts and cleanup use
        :meth:`scan`."""
        if not self.exists:
            return self
        self.warnings = warnings
        self.root_stat = os.stat(self.path)
        for entry, st in _entries(self.path, warnings):
            if not stat.S_ISDIR(st.st_mode):
                self._classify(entry, st, warnings)
        return self

    def _classify(self, entry, st, warnings):
        name = entry.name
        if stat.S_ISDIR(st.st_mode):
            if name in _CATEGORY_DIRS:
                self.other_usage.add(st)
                category = _CATEGORY_DIRS[name]
                for child, child_st in _entries(entry.path, warnings):
                    self.entries[category].append(
                        CacheEntry(self, name + "/" + child.name, category, child_st.st_mtime))
            elif os.path.isfile(os.path.join(entry.path, "info", "index.json")):
                self.entries["extracted"].append(ExtractedPackage(self, name, st.st_mtime))
            else:
                self.other.append(CacheEntry(self, name, "other", st.st_mtime))
            return
        category = (_file_category(name) if stat.S_ISREG(st.st_mode) else None) or "other"
        usage = DiskUsage()
        usage.add(st)
        item = CacheEntry(self, name, category, st.st_mtime, usage)
        (self.other if category == "other" else self.entries[category]).append(item)

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


class References(object):
    """Which extracted packages the known environments name in their PrefixRecords.

    A record that says where it was extracted from (``extracted_package_dir``) pins that copy; a
    record that does not (or is corrupt) protects every cached copy of its dist.
    """

    def __init__(self, environments):
        self.by_path = {}
        self.by_dist = {}
        self._real_dirs = {}
        for env in environments:
            for record in env.records:
                if record.extracted_package_dir:
                    real = self._resolve(record.extracted_package_dir)
                    self.by_path.setdefault(real, []).append((env, record))
                    # A record whose package dir no longer exists where it says still protects
                    # copies elsewhere (the cache may have been moved behind a symlink).
                    if not os.path.isdir(record.extracted_package_dir):
                        self.by_dist.setdefault(record.dist, []).append((env, record))
                else:
                    self.by_dist.setdefault(record.dist, []).append((env, record))

    def _resolve(self, path):
        """Resolve the cache directory's symlinks (once per directory), not the package entry."""
        parent, name = os.path.split(path)
        real = self._real_dirs.get(parent)
        if real is None:
            real = self._real_dirs[parent] = os.path.realpath(parent)
        return os.path.join(real, name)

    def referencing(self, package):
        """``(environment, record)`` pairs that name this extracted package."""
        found = list(self.by_path.get(self._resolve(package.path), ()))
        found.extend(self.by_dist.get(package.dist, ()))
        return found


class Verdict(object):
    """Why an extracted package is kept or may be removed."""

    __slots__ = ("package", "unused", "reason", "referenced_by")

    def __init__(self, package, unused, reason, referenced_by=()):
        self.package = package
        self.unused = unused
        self.reason = reason
        self.referenced_by = referenced_by

    @property
    def conda_clean_would_remove(self):
        """conda clean --packages decides from st_nlink alone."""
        return not self.package.has_shared_files

    def as_dict(self):
        result = {
            "path": self.package.path,
            "dist": self.package.dist,
            "reason": self.reason,
            "apparent_bytes": self.package.usage.apparent,
            "disk_bytes": self.package.usage.on_disk,
        }
        if self.referenced_by:
            result["referenced_by"] = sorted(set(env.prefix for env, _r in self.referenced_by))
            result["link_types"] = sorted(set(r.link_type for _e, r in self.referenced_by))
        return result


def find_unused(packages, references):
    """Decide, for each extracted package, whether it is unused; return ``{path: Verdict}``.

    Unused means no known environment's PrefixRecord names it (any link type) and none of its files
    has a hard link outside the set being removed.  The second rule is applied to a fixed point: a
    package kept because of an outside link makes the links it shares with others outside too.
    """
    verdicts = {}
    candidates = []
    for package in packages:
        refs = references.referencing(package)
        if refs:
            types = sorted(set(r.link_type for _e, r in refs))
            verdicts[package.path] = Verdict(
                package, False, "referenced by %d environment record(s) (%s)" % (len(refs), ", ".join(types)), refs)
        else:
            candidates.append(package)
    while True:
        links_in_set = {}
        for package in candidates:
            for key, seen, _nlink in package.usage.inodes():
                links_in_set[key] = links_in_set.get(key, 0) + seen
        kept = []
        for package in candidates:
            for key, _seen, nlink in package.usage.inodes():
                if nlink > links_in_set[key]:
                    kept.append(package)
                    break
        if not kept:
            break
        for package in kept:
            verdicts[package.path] = Verdict(
                package, False, "has files hard-linked outside the removal set (an unknown environment?)")
        kept_paths = set(p.path for p in kept)
        candidates = [p for p in candidates if p.path not in kept_paths]
    for package in candidates:
        if package.has_shared_files:
            reason = "no environment record names it; its hard links stay inside the removal set"
        else:
            reason = "no environment record names it and no file is linked elsewhere"
        verdicts[package.path] = Verdict(package, True, reason)
    return verdicts


class Host(object):
    """Everything conda-related on one host: installations, their configs, caches, environments."""

    def __init__(self, users, explicit_roots=(), env=None, tarballs_only=False):
        self.warnings = Warnings()
        self.users = users
        self.env = dict(env or {})
        self.tarballs_only = tarballs_only
        self.installations = [Installation(r) for r in discover_roots(users, explicit_roots, self.warnings)]
        self.environments = []
        self.caches = []
        self.cache_users = {}  # cache path -> sorted "root:user" labels
        self.cache_routes = {}  # real cache path -> [(path as configured, uid that named it)]

    def resolve_configs(self):
        """Effective pkgs_dirs/envs_dirs per installation for root and each user with conda state."""
        users = self._config_users()
        for inst in self.installations:
            for user in users:
                config = _condarc.resolve(inst.root, user.home, self.env, inst.writable_by(user))
                self.warnings.extend(w for w in config.warnings if w not in self.warnings)
                inst.configs[user.name] = config
        return self

    def _config_users(self):
        """Root always; others when they have conda config, envs or caches in their home."""
        chosen = []
        for user in self.users:
            if user.uid == 0 or _has_conda_state(user.home):
                chosen.append(user)
        return chosen

    def load_environments(self):
        prefixes = []
        for inst in self.installations:
            prefixes.append(inst.root)
            for config in inst.configs.values():
                for envs_dir in config.envs_dirs:
                    prefixes.extend(_list_prefixes(envs_dir))
        for user in self.users:
            prefixes.extend(read_environments_txt(user, self.warnings))
        for prefix in _dedupe_real(prefixes):
            if not is_prefix(prefix):
                continue
            env = Environment.load(prefix, self.warnings, records=not self.tarballs_only)
            if env is not None:
                self.environments.append(env)
        return self

    def load_caches(self):
        """Scan every pkgs_dir any installation's config names, and remember who named it."""
        paths, labels = [], {}
        homes = [(user.uid, user.home) for user in self.users]
        users = dict((user.name, user) for user in self.users)
        for inst in self.installations:
            for user_name, config in sorted(inst.configs.items()):
                for path in config.pkgs_dirs:
                    paths.append(path)
                    real = os.path.realpath(path)
                    labels.setdefault(real, set()).add("%s:%s" % (inst.root, user_name))
                    routes = self.cache_routes.setdefault(real, [])
                    for origin in config.origins.get(path, ()):
                        route = (path, _origin_namer(origin, inst, users.get(user_name), homes))
                        if route not in routes:
                            routes.append(route)
        for path in _dedupe_real(paths):
            self.cache_users[path] = sorted(labels.get(os.path.realpath(path), ()))
            self.caches.append(self._scan(PackageCache(path)))
        return self

    def routes(self, cache):
        """``[(path, namer uid)]``: how the configurations name a cache (see ``cleanup.authorize``)."""
        return list(self.cache_routes.get(os.path.realpath(cache.path), ()))

    def homes(self):
        return [(user.uid, user.home) for user in self.users]

    def _scan(self, cache):
        return cache.scan_tarballs(self.warnings) if self.tarballs_only else cache.scan(self.warnings)

    def select_caches(self, roots=(), pkgs_dirs=()):
        """The caches a cleanup may touch: the named ones, those of the named roots, or all.

        A named directory must be a cache some configuration lists, or look like one (``urls.txt``
        or ``urls``); anything else is refused.
        """
        known = dict((os.path.realpath(c.path), c) for c in self.caches)
        if pkgs_dirs:
            chosen = []
            for path in pkgs_dirs:
                real = os.path.realpath(path)
                cache = known.get(real)
                if cache is None:
                    if not any(os.path.isfile(os.path.join(real, n)) for n in CACHE_MARKERS):
                        raise ValueError("%s is not a conda package cache (not configured for any "
                                         "installation, no urls.txt)" % path)
                    cache = self._scan(PackageCache(path))
                # Named by the operator: root's word, still subject to who controls the path.
                routes = self.cache_routes.setdefault(real, [])
                if (path, ROOT) not in routes:
                    routes.append((path, ROOT))
                chosen.append(cache)
            return chosen
        if roots:
            wanted = set(os.path.normpath(r) for r in roots)
            return [c for c in self.caches if c.exists and any(
                label.rsplit(":", 1)[0] in wanted for label in self.cache_users.get(c.path, ()))]
        return [c for c in self.caches if c.exists]

    def _start_sizing(self):
        """Start walking every cache item not sized yet (see :class:`Walks`); ``(items, walks)``."""
        pending = [item for cache in self.caches for items in list(cache.entries.values()) + [cache.other]
                   for item in items if not item.sized]
        return pending, Walks([item.path for item in pending], on_error=self.warnings.path_error)

    def verdicts(self):
        if self.tarballs_only:
            raise ValueError("verdicts need a full load (Host.load without tarballs_only)")
        references = References(self.environments)
        packages = [p for cache in self.caches for p in cache.extracted]
        return find_unused(packages, references)

    @classmethod
    def load(cls, users, explicit_roots=(), env=None, tarballs_only=False, sized=False):
        """Everything, or with ``tarballs_only`` what a backup needs: the same installations,
        configs, environments (prefixes only, records not read) and caches (top-level files
        only, see :meth:`PackageCache.scan_tarballs`).  Cache items are sized on first use
        unless ``sized`` (facts, which report them all) sizes them all at once, in parallel."""
        host = cls(users, explicit_roots, env, tarballs_only).resolve_configs().load_caches()
        if not sized:
            return host.load_environments()
        # Facts report every item: the helpers walk the caches while this process reads records.
        pending, walks = host._start_sizing()
        try:
            host.load_environments()
        finally:
            usages = walks.result()  # never leaves a helper behind
        for item, usage in zip(pending, usages):
            item.usage = usage
        return host


def _origin_namer(origin, inst, user, homes):
    """The uid behind one origin of a pkgs_dir: a file's writer, the installation's owner for
    its default cache, the user for ``~/.conda/pkgs``; the module's ``environment`` is the
    operator's word (root's), though what it names is still checked for who controls the path."""
    if origin == _condarc.DEFAULT_HOME:
        return user.uid if user is not None else ANYONE
    if origin == _condarc.DEFAULT_ROOT:
        return namer_of(inst.root, homes)
    if origin.startswith("$"):
        return ROOT
    return namer_of(origin, homes)


def _has_conda_state(home):
    return any(os.path.exists(os.path.join(home, p)) for p in (
        ".conda", ".condarc", ".config/conda"))


def _list_prefixes(envs_dir):
    try:
        names = sorted(os.listdir(envs_dir))
    except OSError:
        return []
    return [os.path.join(envs_dir, n) for n in names]
