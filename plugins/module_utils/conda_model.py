# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The conda domain model: installations, environments and their references.

Names follow conda's own files (``conda/core/package_cache_data.py``, ``conda/models/records.py``):
a PackageCache (``conda_cache``) holds Tarballs and ExtractedPackages; an Environment holds
PrefixRecords; a Host (``conda_host``) ties them together.  The one
answer to "which extracted packages are unused" is :func:`find_unused`; every module that reports or
removes packages calls it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import glob
import io
import json
import os
import pwd
import re
import stat

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_mamba
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import open_regular
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT, is_clean

TARBALL_SUFFIXES = (".conda", ".tar.bz2")
PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = conda_mamba.LOCK_SUFFIX
MAMBA_TRASH_SUFFIX = conda_mamba.TRASH_SUFFIX
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


class OwnConfigProblem(str):
    """A warning about a config file only its user writes (in their home): what that user's conda
    would use is partly unknown, which restricts a cleanup (``conda_clean``) but does not let one
    user switch cleaning off for the whole host."""

    def __new__(cls, message, user):
        self = super(OwnConfigProblem, cls).__new__(cls, message)
        self.user = user
        return self


class Warnings(list):
    """Collected non-fatal problems, each naming the path it is about."""

    def path_error(self, path, exc):
        self.append("%s: %s" % (path, getattr(exc, "strerror", None) or exc))

    def notice(self, message):
        if message not in self:
            self.append(Notice(message))

    def own_config(self, message, user):
        """A problem with a config file of ``user``'s own (see :class:`OwnConfigProblem`)."""
        if message not in self:
            self.append(OwnConfigProblem(message, user))

    def blocking(self):
        """The warnings that mean something could not be known (every one but notices and
        problems with a user's own config files, which restrict a cleanup instead)."""
        return [w for w in self if not isinstance(w, (Notice, OwnConfigProblem))]

    def degraded_users(self):
        """Users whose own conda config could not be read, by name."""
        return sorted(set(w.user for w in self if isinstance(w, OwnConfigProblem)))


def owner_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class PrefixRecord(object):
    """One ``conda-meta/<dist>.json``: what an environment links from which extracted package.

    Only what references need is kept: the dist (the file stem, so even a corrupt record names
    its package), the link type, the extracted package dir (else the tarball's path without its
    suffix) and the folder mamba >= 2.6 caches the package in, from its ``url``.
    """

    __slots__ = ("path", "dist", "link_type", "extracted_package_dir", "cache_folder")

    def __init__(self, path, data=None):
        self.path = path
        self.dist = os.path.basename(path)[: -len(".json")]
        data = data or {}
        link = data.get("link") or {}
        self.link_type = LINK_TYPES.get(link.get("type"), "unknown") if isinstance(link, dict) else "unknown"
        epd = data.get("extracted_package_dir") or (link.get("source") if isinstance(link, dict) else None)
        tarball = data.get("package_tarball_full_path")
        if not epd and isinstance(tarball, str):
            epd = strip_tarball_suffix(tarball)
        self.extracted_package_dir = os.path.normpath(epd) if isinstance(epd, str) and epd else None
        url = data.get("url")
        self.cache_folder = conda_mamba.folder_key(conda_mamba.cache_folder(url, data.get("fn"))) \
            if isinstance(url, str) and "/" in url else None

    @classmethod
    def load(cls, path, warnings):
        """Read a record; a corrupt one still names its dist (its file stem), so it still protects."""
        data, error, corrupt = read_record(path)
        if corrupt:
            warnings.append("%s: corrupt PrefixRecord (%s); its package is treated as in use" % (path, error))
        elif error is not None:
            warnings.path_error(path, error)
        return cls(path, data)


def read_record(path):
    """``(data, error, corrupt)`` of one JSON record file (a PrefixRecord, a
    ``repodata_record.json``): the object, or None with the OSError or the reason it is not a
    JSON object (``corrupt``: read, but not a record; a file of NUL bytes, as some installers
    left them, says so).  Bytes that are not UTF-8 are kept (surrogateescape)."""
    try:
        with io.open(open_regular(path, follow=True), "rb") as handle:
            raw = handle.read()
    except (OSError, IOError) as exc:
        return None, exc, False
    if not raw.strip(b"\0 \t\r\n"):
        return None, ("zeroed: %d bytes, all NUL" % len(raw) if b"\0" in raw else "empty"), True
    try:
        data = json.loads(raw.decode("utf-8", "surrogateescape"))
    except ValueError as exc:
        return None, str(exc), True
    if not isinstance(data, dict):
        return None, "not a JSON object", True
    return data, None, False


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
    """A root prefix: conda's, or micromamba's (``tool`` ``mamba``: no conda in it, found where
    micromamba keeps its root), its version, and the configuration each user sees for it."""

    def __init__(self, root, tool=conda_mamba.CONDA):
        self.root = root
        self.tool = tool
        self.configs = {}  # user name -> EffectiveConfig

    @property
    def conda_version(self):
        for path in sorted(glob.glob(os.path.join(self.root, "conda-meta", "conda-[0-9]*.json"))):
            try:
                with io.open(open_regular(path, follow=True), **READ_TEXT) as handle:
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
        with io.open(open_regular(path, follow=True), **READ_TEXT) as handle:
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
    return dedupe_real(roots)


def discover_installations(users, explicit=(), env=None, warnings=None):
    """Every root prefix on the host: conda's (:func:`discover_roots`) and micromamba's
    (:func:`conda_mamba.root_candidates` that are roots; a registered ``<dir>/envs/<name>``
    is not enough, ``~/.conda`` and homes look the same).  A root with conda installed in it is
    conda's even where micromamba would look."""
    roots = discover_roots(users, explicit, warnings)
    mamba = [p for p in conda_mamba.root_candidates(users, env or {}) if conda_mamba.is_root(p)]
    installations = [Installation(root) for root in roots]
    mamba_real = set(os.path.realpath(p) for p in mamba)
    for inst in installations:
        if os.path.realpath(inst.root) in mamba_real and inst.conda_version is None:
            inst.tool = conda_mamba.MAMBA
    known = set(os.path.realpath(r) for r in roots)
    installations.extend(Installation(p, conda_mamba.MAMBA) for p in dedupe_real(mamba) if os.path.realpath(p) not in known)
    return installations


def dedupe_real(paths):
    seen, result = set(), []
    for path in paths:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            result.append(path)
    return result


class References(object):
    """Which extracted packages the known environments name in their PrefixRecords.

    A record that says where it was extracted from (``extracted_package_dir``, else its
    ``package_tarball_full_path``) pins that copy; one that only has a ``url`` pins the places
    mamba would find it in every cache (its channel folder, and flat); a record with none of
    them (or corrupt) protects every cached copy of its dist.
    """

    def __init__(self, environments):
        self.by_path = {}
        self.by_dist = {}
        self.by_place = {}  # (cache folder, dist) -> refs: that place in every cache ("" flat)
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
                elif record.cache_folder:
                    # Where mamba would look for it in each cache: its channel folder, then flat.
                    for folder in (record.cache_folder, ""):
                        self.by_place.setdefault((folder, record.dist), []).append((env, record))
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
        place = conda_mamba.split_relpath(package.relpath)
        if place is not None:
            found.extend(self.by_place.get((conda_mamba.folder_key(place[0]), package.dist), ()))
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


def read_history(prefix):
    """``(History, None)`` of a prefix's ``conda-meta/history``, or ``(None, the OSError)``."""
    try:
        with io.open(open_regular(os.path.join(prefix, "conda-meta", "history"), follow=True), **READ_TEXT) as handle:
            return History(handle), None
    except (OSError, IOError) as exc:
        return None, exc


class History(object):
    """What ``conda-meta/history`` says, as conda's ``History`` reads it.

    ``installed``: the dists installed after the last revision (``==> date <==``), or None when
    it names no package.  A revision whose package lines all start with ``+``/``-`` changes the
    state; one with bare lines (conda before 4.4) is the whole state.  A line names its package as
    ``[channel[/subdir]::]name-version-build``; the dist is what follows ``::``.

    ``requested``: ``{name: spec}`` the user asked for, from the ``# update specs:`` (also
    ``install``, ``create``) and ``# remove specs:`` (``uninstall``) comments, in order.

    ``revisions``: the dists installed after each revision that names a package, oldest first
    (what ``conda install --rev N`` goes back to).
    """

    def __init__(self, lines):
        self.installed = None
        self.requested = {}
        self.revisions = []
        state, revision, seen = set(), [], False
        for line in lines:
            line = line.strip()
            if line.startswith("==>") and line.endswith("<=="):
                self._apply(state, revision)
                revision = []
            elif line.startswith("#"):
                self._comment(line)
            elif line:
                revision.append(line)
                seen = True
        self._apply(state, revision)
        if seen:
            self.installed = state

    def _apply(self, state, revision):
        if not revision:
            return
        self._replay(state, revision)
        self.revisions.append(frozenset(state))

    @staticmethod
    def _replay(state, revision):
        if all(line[0] in "+-" for line in revision):
            for line in revision:
                dist = line[1:].rsplit("::", 1)[-1]
                if line[0] == "+":
                    state.add(dist)
                else:
                    state.discard(dist)
        else:
            state.clear()
            state.update(line.lstrip("+-").rsplit("::", 1)[-1] for line in revision)

    def _comment(self, line):
        match = _SPECS.match(line)
        if not match:
            return
        action, text = match.group(1), (match.group(2) or "").strip()
        if text.startswith("["):
            try:
                specs = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return
            if not isinstance(specs, (list, tuple)):
                return
        else:  # conda before 4.4: comma-separated
            specs = [spec.strip() for spec in text.split(",")]
        specs = [spec for spec in specs if isinstance(spec, str) and spec and not spec.endswith("@")]
        for spec in specs:
            name = spec_name(spec)
            if not name:
                continue
            if action in ("update", "install", "create"):
                self.requested[name] = spec
            elif action in ("remove", "uninstall"):
                self.requested.pop(name, None)


_SPECS = re.compile(r"#\s*(\w+)\s*specs:\s*(.+)?$")
_NAME = re.compile(r"[^\s=<>!~\[(,;|]+")


def spec_name(spec):
    """The package name of a match spec (``conda-forge/linux-64::numpy >=1.26`` -> ``numpy``)."""
    spec = spec.strip().rsplit("::", 1)[-1]
    match = _NAME.match(spec)
    return match.group(0).lower() if match else None
