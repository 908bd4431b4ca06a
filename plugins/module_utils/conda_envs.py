# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ansible_facts.conda_envs``: every known environment with its size, the caches it depends
on, its last change and its health, checked as ``conda doctor`` checks one environment.

Health compares the prefix with its PrefixRecords (``conda-meta/<dist>.json``):

- a file the record lists (``files``, ``paths_data``) that is not there is *missing*; a symlink
  that leads nowhere is *dangling*;
- a regular file whose size differs from ``size_in_bytes`` is *altered*, and in ``full`` mode
  one whose sha256 differs too (``sha256_in_prefix`` where conda rewrote the prefix into the
  file, else the package's ``sha256``); files conda rewrote without recording the result are
  only checked for being there;
- a soft-linked environment's files are the cache's: the link must point at the record's
  ``extracted_package_dir`` and the file there is checked the same way;
- a record that cannot be read is *corrupt* (named, never a crash);
- ``conda-meta/history`` replayed (``+``/``-`` lines per ``==> date <==`` revision) must name
  exactly the packages the records name.

Orphans (:func:`orphans`) are what a prune would drop: installed packages that no spec the
history says was requested needs through the records' ``depends``; reported, never removed.

After a cleanup (:func:`verified_run`) the environments it touched are checked again in ``fast``
mode: conda's, and the pixi / micromamba prefixes a rattler clean found, whose records have the
same shape.

Files are hashed through descriptors opened without following a symlink, and only when the
directory they are in resolves inside the environment (or, soft-linked, inside the package's
extracted directory).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat
import time

from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import sha256_of
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import RealDirs, inside
from ansible_collections.pkgcache.fleet.plugins.module_utils._parallel import run_parallel
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import (
    Environment, PrefixRecord, owner_name, read_history, read_record, spec_name)

FAST = "fast"
FULL = "full"
MODES = (FAST, FULL)
# Problems listed per kind and environment; the counts stay exact beyond it.
MAX_LISTED = 100
PROBLEM_KINDS = ("missing", "dangling", "altered", "corrupt_records", "not_in_history", "not_in_records")
_GONE = (errno.ENOENT, errno.ENOTDIR)


CONDA_TOOL, RATTLER_TOOL = "conda", "rattler"


def gather(users, roots=(), env=None, mode=FAST, workers=1, rattler_prefixes=()):
    """The facts of every known environment on this host; problems reading it become warnings.

    conda's environments (its installations, envs dirs and registries; micromamba's roots too) have
    ``tool`` ``conda``; ``rattler_prefixes`` (the pixi / rattler prefixes ``rattler_cache`` found)
    that conda does not know are checked the same way, with ``tool`` ``rattler``."""
    if mode not in MODES:
        raise ValueError("mode must be one of %s" % ", ".join(MODES))
    # Prefixes only: each environment's records are read once, below, with their file lists.
    host = Host(users, roots, env, tarballs_only=True).resolve_configs().load_environments()
    pkgs_dirs = set()
    for inst in host.installations:
        for config in inst.configs.values():
            pkgs_dirs.update(os.path.realpath(p) for p in config.pkgs_dirs)
    found = [(e, CONDA_TOOL) for e in host.environments]
    prefixes = [os.path.realpath(e.prefix) for e in host.environments]
    for prefix in rattler_prefixes:
        environment = prefix_environment(prefix) if os.path.realpath(prefix) not in prefixes else None
        if environment is not None:
            found.append((environment, RATTLER_TOOL))
            prefixes.append(os.path.realpath(prefix))
    roots_of = dict((os.path.realpath(i.root), i.root) for i in host.installations)

    def one(item):
        environment = item[0]
        others = set(p for p in prefixes if p != os.path.realpath(environment.prefix)) | pkgs_dirs
        return EnvironmentCheck(environment, mode, pkgs_dirs, others).run()

    checked = run_parallel(one, found, workers)
    warnings = list(host.warnings)
    environments = []
    for (environment, tool), (facts, problems) in zip(found, checked):
        facts["root"] = _root_of(environment.prefix, roots_of)
        facts["tool"] = tool
        environments.append(facts)
        warnings.extend(problems)
    unhealthy = [e["path"] for e in environments if not e["health"]["healthy"]]
    return {
        "mode": mode,
        "environments": environments,
        "totals": {
            "environments": len(environments),
            "unhealthy": len(unhealthy),
            "packages": sum(e["package_count"] for e in environments),
            "disk_bytes": sum(e["size"]["disk_bytes"] for e in environments),
            "exclusive_bytes": sum(e["size"]["exclusive_bytes"] for e in environments),
        },
        "unhealthy": unhealthy,
        "warnings": warnings,
    }


def _root_of(prefix, roots_of):
    real = os.path.realpath(prefix)
    if real in roots_of:
        return roots_of[real]
    parent = os.path.dirname(real)
    if os.path.basename(parent) == "envs":
        return roots_of.get(os.path.dirname(parent))
    return None


class Health(object):
    """Problems found in one environment, counted exactly and listed up to ``MAX_LISTED``."""

    def __init__(self):
        self.counts = dict((kind, 0) for kind in PROBLEM_KINDS)
        self.listed = dict((kind, []) for kind in PROBLEM_KINDS)
        self.checked_files = 0
        self.hashed_files = 0

    def add(self, kind, item):
        self.counts[kind] += 1
        if len(self.listed[kind]) < MAX_LISTED:
            self.listed[kind].append(item)

    def as_dict(self, mode, history_checked):
        result = {
            "healthy": not any(self.counts.values()),
            "checked_files": self.checked_files,
            "hashed_files": self.hashed_files,
            "sha256_checked": mode == FULL,
            "history_checked": history_checked,
            "problems": dict(self.counts),
        }
        result.update(self.listed)
        return result


class EnvironmentCheck(object):
    """One environment's facts and health; ``run()`` returns ``(facts, warnings)``."""

    def __init__(self, environment, mode, pkgs_dirs, excluded):
        self.env = environment
        self.prefix = environment.prefix
        self.real_prefix = os.path.realpath(environment.prefix)
        self.mode = mode
        self.pkgs_dirs = pkgs_dirs
        self.excluded = excluded
        self.warnings = []
        self.health = Health()
        self._real_dirs = RealDirs()

    def warn(self, path, exc):
        self.warnings.append("%s: %s" % (path, getattr(exc, "strerror", None) or exc))

    def run(self):
        records, history, history_checked = self._check()
        caches = {}
        for record, _data in records:
            self._note_cache(caches, record)
        facts = {
            "path": self.prefix,
            "owner": self.env.owner,
            "package_count": len(records),
            "link_types": self.env.link_types(),
            "size": self._size(),
            "caches": [caches[path] for path in sorted(caches)],
            "last_change": self._last_change(),
            "health": self.health.as_dict(self.mode, history_checked),
            "orphans": orphans(records, history),
        }
        return facts, self.warnings

    def check_health(self):
        """The health alone (no sizes, no orphans): what a check after a cleanup needs."""
        _records, _history, history_checked = self._check()
        return self.health.as_dict(self.mode, history_checked)

    def _check(self):
        records = self._records()
        self.env.records = [record for record, _data in records]
        history = self._history()
        history_checked = self._compare_history(history, [r.dist for r, _data in records])
        for record, data in records:
            if data is not None:
                self._check_files(record, data)
        return records, history, history_checked

    # -- records and history -----------------------------------------------------------------

    def _records(self):
        meta = os.path.join(self.prefix, "conda-meta")
        try:
            names = sorted(n for n in os.listdir(meta) if n.endswith(".json"))
        except OSError as exc:
            self.warn(meta, exc)
            return []
        records = []
        for name in names:
            path = os.path.join(meta, name)
            data, error, corrupt = read_record(path)
            if corrupt:
                self.health.add("corrupt_records", path)
                self.warnings.append("%s: corrupt PrefixRecord (%s); its files cannot be checked" % (path, error))
            elif error is not None:
                self.warn(path, error)
            records.append((PrefixRecord(path, data), data))
        return records

    def _history(self):
        history, error = read_history(self.prefix)
        if error is not None:
            self.warn(os.path.join(self.prefix, "conda-meta", "history"), error)
        return history

    def _compare_history(self, history, dists):
        """History replayed vs the records' dists; False when the history names no package
        (some tools leave it empty), so nothing can be compared."""
        if history is None or history.installed is None:
            return False
        recorded = set(dists)
        for dist in sorted(recorded - history.installed):
            self.health.add("not_in_history", dist)
        for dist in sorted(history.installed - recorded):
            self.health.add("not_in_records", dist)
        return True

    def _last_change(self):
        path = os.path.join(self.prefix, "conda-meta", "history")
        try:
            mtime = os.lstat(path).st_mtime
        except OSError as exc:
            self.warn(path, exc)
            return None
        return {"timestamp": int(mtime), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))}

    def _note_cache(self, caches, record):
        epd = record.extracted_package_dir
        if not epd:
            return
        cache = os.path.dirname(epd)
        entry = caches.get(cache)
        if entry is None:
            entry = caches[cache] = {
                "path": cache,
                "configured": os.path.realpath(cache) in self.pkgs_dirs,
                "packages": 0,
                "soft_linked": 0,
                "extracted_present": 0,
                "needed_at_runtime": False,
            }
        entry["packages"] += 1
        if record.link_type == "softlink":
            entry["soft_linked"] += 1
            entry["needed_at_runtime"] = True
        if os.path.isdir(epd):
            entry["extracted_present"] += 1

    # -- files ---------------------------------------------------------------------------------

    def _check_files(self, record, data):
        entries = _path_entries(data)
        for rel, entry in entries:
            parts = rel.split("/")
            if not rel or rel.startswith("/") or ".." in parts:
                self.warnings.append("%s: lists %r, which is not a path inside the environment; not checked"
                                     % (record.path, rel))
                continue
            self.health.checked_files += 1
            self._check_one(record, rel, entry)

    def _check_one(self, record, rel, entry):
        path = os.path.join(self.prefix, rel)
        try:
            st = os.lstat(path)
        except OSError as exc:
            if exc.errno in _GONE:
                self.health.add("missing", {"package": record.dist, "path": rel})
            else:
                self.warn(path, exc)
            return
        if entry.get("path_type") == "directory":
            return
        if stat.S_ISLNK(st.st_mode):
            self._check_link(record, rel, entry, path)
        elif stat.S_ISREG(st.st_mode):
            self._check_content(record, rel, entry, path, st, self.real_prefix)
        else:
            self.health.add("altered", {"package": record.dist, "path": rel, "reason": "not a regular file"})

    def _check_link(self, record, rel, entry, path):
        try:
            target = os.readlink(path)
            st = os.stat(path)
        except OSError as exc:
            if exc.errno in _GONE + (errno.ELOOP,):
                self.health.add("dangling", {"package": record.dist, "path": rel, "target": _readlink(path)})
            else:
                self.warn(path, exc)
            return
        epd = record.extracted_package_dir
        # Linked from the cache (a soft-linked environment): the file there is this file.
        if epd and os.path.normpath(target) == os.path.join(epd, rel) and stat.S_ISREG(st.st_mode):
            self._check_content(record, rel, entry, os.path.normpath(target), st, os.path.realpath(epd))

    def _check_content(self, record, rel, entry, path, st, within):
        size, sha256 = _expected(entry)
        if size is not None and st.st_size != size:
            self.health.add("altered", {"package": record.dist, "path": rel,
                                        "reason": "size %d, recorded %d" % (st.st_size, size)})
            return
        if self.mode != FULL or sha256 is None:
            return
        if not inside(self._real_dirs[os.path.dirname(path)], within):
            self.warnings.append("%s: its directory leads outside %s; not hashed" % (path, within))
            return
        try:
            actual = sha256_of(path)
        except OSError as exc:
            self.warn(path, exc)
            return
        self.health.hashed_files += 1
        if actual != sha256.lower():
            self.health.add("altered", {"package": record.dist, "path": rel, "reason": "sha256 differs"})

    # -- size ----------------------------------------------------------------------------------

    def _size(self):
        """The prefix's bytes without what lives inside it but is not it (a root prefix holds
        ``envs/`` and ``pkgs/``): ``exclusive_bytes`` are inodes with every link inside the
        environment, ``shared_bytes`` the rest (hard links from caches or other environments)."""
        usage = DiskUsage()
        _walk_excluding(self.real_prefix, usage, self.excluded, self.warn)
        exclusive = usage.reclaimable
        return {
            "files": usage.files,
            "apparent_bytes": usage.apparent,
            "disk_bytes": usage.on_disk,
            "exclusive_bytes": exclusive,
            "shared_bytes": usage.on_disk - exclusive,
        }


def _walk_excluding(top, usage, excluded, on_error):
    """:func:`walk` of ``top`` leaving out the ``excluded`` real paths below it."""
    below = [e for e in excluded if e.startswith(top + "/")]
    if not below:
        walk(top, usage, on_error=on_error)
        return
    try:
        usage.add(os.lstat(top))
        names = sorted(os.listdir(top))
    except OSError as exc:
        on_error(top, exc)
        return
    for name in names:
        child = top + "/" + name
        if child in excluded:
            continue
        if os.path.isdir(child) and not os.path.islink(child):
            _walk_excluding(child, usage, below, on_error)
        else:
            walk(child, usage, on_error=on_error)


def _path_entries(data):
    """``[(relative path, paths_data entry or {})]``: every file the record lists, once."""
    entries, seen = [], set()
    paths_data = data.get("paths_data")
    listed = paths_data.get("paths") if isinstance(paths_data, dict) else None
    for entry in listed if isinstance(listed, list) else ():
        if isinstance(entry, dict) and isinstance(entry.get("_path"), str) and entry["_path"] not in seen:
            seen.add(entry["_path"])
            entries.append((entry["_path"], entry))
    files = data.get("files")
    for rel in files if isinstance(files, list) else ():
        if isinstance(rel, str) and rel not in seen:
            seen.add(rel)
            entries.append((rel, {}))
    return entries


def _expected(entry):
    """``(size, sha256)`` a file must have in the prefix, each None when the record does not say.

    A text file conda rewrote the prefix into changes size and hash; conda then records only the
    new hash (``sha256_in_prefix``).  A binary rewrite pads to the same size."""
    rewritten = bool(entry.get("prefix_placeholder"))
    size = entry.get("size_in_bytes")
    if not isinstance(size, int) or isinstance(size, bool) or (rewritten and entry.get("file_mode") != "binary"):
        size = None
    sha256 = entry.get("sha256_in_prefix") or (None if rewritten else entry.get("sha256"))
    return size, sha256 if isinstance(sha256, str) else None


def _readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return None


# conda's add_pip_as_python_dependency (on by default): pip counts as a dependency of python.
_IMPLIED = {"python": ("pip",)}


def orphans(records, history):
    """What a prune would drop: installed packages no requested spec needs any more, through
    the records' ``depends``.  Reported, never removed.

    ``checked`` is false (and nothing is listed) when that cannot be known: no history, no
    requested spec in it, or a record that cannot be read (its dependencies are unknown)."""
    result = {"checked": False, "requested": [], "packages": []}
    if history is None or not history.requested or any(data is None for _r, data in records):
        return result
    by_name, depends = {}, {}
    for record, data in records:
        name = data.get("name") if isinstance(data.get("name"), str) else record.dist.rsplit("-", 2)[0]
        name = name.lower()
        by_name[name] = record.dist
        listed = data.get("depends")
        depends[name] = [spec_name(d) for d in listed if isinstance(d, str)] if isinstance(listed, list) else []
        depends[name].extend(_IMPLIED.get(name, ()))
    requested = sorted(name for name in history.requested if name in by_name)
    needed, todo = set(), list(requested)
    while todo:
        name = todo.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        todo.extend(depends[name])
    result.update(checked=True, requested=requested,
                  packages=sorted(by_name[name] for name in by_name if name not in needed))
    return result


# -- after a cleanup ---------------------------------------------------------------------------


def prefix_environment(prefix):
    """An :class:`Environment` for a prefix found outside conda's own discovery (a rattler
    clean's), its records left to the health check to read; None when the prefix is gone."""
    try:
        return Environment(prefix, None, owner_name(os.stat(prefix).st_uid))
    except OSError:
        return None


def health_of(environments):
    """``{prefix: health}`` of each environment in ``fast`` mode."""
    return dict((env.prefix, EnvironmentCheck(env, FAST, set(), set()).check_health()) for env in environments)


def verified_run(environments, check_mode, run):
    """``(run(), verified_environments)``: with ``environments`` (those a cleanup's plans touch;
    None: no verification) each is checked before and after ``run()``, and ``broken`` lists the
    ones whole before and not after; in check mode they are only listed."""
    if environments is None:
        return run(), None
    unique = {}
    for env in environments:
        unique.setdefault(os.path.realpath(env.prefix), env)
    environments = sorted(unique.values(), key=lambda env: env.prefix)
    before = health_of(environments) if not check_mode else {}
    result = run()
    verified = {"environments": [env.prefix for env in environments], "checked": not check_mode,
                "unhealthy_before": [], "broken": []}
    if check_mode:
        return result, verified
    after = health_of(environments)
    verified["unhealthy_before"] = [p for p in verified["environments"] if not before[p]["healthy"]]
    for prefix in verified["environments"]:
        if before[prefix]["healthy"] and not after[prefix]["healthy"]:
            health = after[prefix]
            broken = dict((kind, health[kind]) for kind in PROBLEM_KINDS if health["problems"][kind])
            broken.update(path=prefix, problems=dict((k, v) for k, v in health["problems"].items() if v))
            verified["broken"].append(broken)
    return result, verified
