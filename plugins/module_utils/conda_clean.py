# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy-driven cleanup of conda package caches: plan first, then execute the same plan.

What may be removed comes from the domain model (:func:`conda_model.find_unused` for packages);
this module only applies targets, policies and gates to it, and removes through ``_removal``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import time

from ansible_collections.pkgcache.fleet.plugins.module_utils import _removal
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import statvfs_free
from ansible_collections.pkgcache.fleet.plugins.module_utils._procs import lock_is_stale, process_paths, process_using
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, filesystem
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import version_key

# Module targets -> cache categories.
TARGETS = {
    "tarballs": "tarballs",
    "packages": "unused",
    "index_cache": "index_cache",
    "logfiles": "logs",
    "trash": "trash",
    "partial": "partial",
    "locks": "locks",
    "tempfiles": None,  # in environment prefixes, not in caches
}
TEMPFILE_SUFFIXES = (".c~", ".trash")


class Policy(object):
    """Which candidates to keep anyway, and when to leave a cache alone."""

    def __init__(self, min_age=0, keep_latest=0, exclude=(), busy_age=3600, when_free_below=None,
                 when_cache_above=None, now=None):
        self.min_age = min_age
        self.keep_latest = keep_latest
        self.exclude = list(exclude)
        self.busy_age = busy_age
        self.when_free_below = when_free_below
        self.when_cache_above = when_cache_above
        self.now = time.time() if now is None else now
        self._process_paths = None

    def process_paths(self):
        """What other processes have open, read from /proc once per run (not once per cache)."""
        if self._process_paths is None:
            self._process_paths = process_paths()
        return self._process_paths

    def gate(self, cache):
        """Why this cache is left alone by the gates, or None when cleaning may go ahead."""
        if self.when_free_below is not None:
            fs = filesystem(cache.path)
            kind, value = self.when_free_below
            free = fs["available_bytes"]
            limit = value if kind == "bytes" else fs["total_bytes"] * value / 100.0
            if free >= limit:
                return "free space %d bytes is not below %s" % (free, _describe(self.when_free_below))
        if self.when_cache_above is not None:
            size = cache.total().on_disk
            if size <= self.when_cache_above:
                return "cache uses %d bytes, not above %d" % (size, self.when_cache_above)
        return None

    def keep_reason(self, entry):
        """Why a candidate is kept by policy, or None."""
        for pattern in self.exclude:
            if fnmatch.fnmatchcase(entry.dist, pattern):
                return "excluded by pattern %r" % pattern
        age = self.now - entry.mtime
        if self.min_age and age < self.min_age:
            return "newer than min_age (%ds old)" % int(age)
        return None


def _describe(threshold):
    kind, value = threshold
    return "%g%%" % value if kind == "percent" else "%d bytes" % value


class PlanItem(object):
    __slots__ = ("entry", "category", "reason")

    def __init__(self, entry, category, reason):
        self.entry = entry
        self.category = category
        self.reason = reason

    def as_dict(self):
        return {
            "path": self.entry.path,
            "category": self.category,
            "reason": self.reason,
            "apparent_bytes": self.entry.usage.apparent,
            "disk_bytes": self.entry.usage.on_disk,
        }


class CachePlan(object):
    """What one cache loses, what it keeps and why; or why it is skipped whole."""

    def __init__(self, cache):
        self.cache = cache
        self.items = []
        self.kept = []  # (path, category, reason)
        self.skipped = None  # reason the whole cache is left alone

    @property
    def usage(self):
        total = DiskUsage()
        for item in self.items:
            total.update(item.entry.usage)
        return total

    def as_dict(self):
        usage = self.usage
        return {
            "path": self.cache.path,
            "skipped": self.skipped,
            "remove": [item.as_dict() for item in self.items],
            "kept": [{"path": p, "category": c, "reason": r} for p, c, r in self.kept],
            "apparent_bytes": usage.apparent,
            "disk_bytes": usage.on_disk,
            "reclaimable_bytes": usage.reclaimable,
        }


def busy_reason(cache, policy):
    """A cache in active use: a fresh ``.partial`` download or a process working inside it."""
    for entry in cache.entries["partial"]:
        if policy.now - entry.mtime < policy.busy_age:
            return "download in progress (%s is %ds old)" % (entry.relpath, int(policy.now - entry.mtime))
    pid = process_using(os.path.realpath(cache.path), policy.process_paths())
    if pid is not None:
        return "in use by process %s" % pid
    return None


def plan_cache(cache, categories, verdicts, policy):
    """The plan for one cache: candidates of the chosen categories minus what must be kept."""
    plan = CachePlan(cache)
    plan.skipped = policy.gate(cache) or busy_reason(cache, policy)
    if plan.skipped:
        return plan
    candidates = []
    for category in categories:
        if category == "unused":
            for package in cache.extracted:
                verdict = verdicts[package.path]
                if verdict.unused:
                    candidates.append((package, category, verdict.reason))
                else:
                    plan.kept.append((package.path, category, verdict.reason))
        elif category == "tarballs":
            for entry in cache.tarballs:
                if any(nlink > seen for _k, seen, nlink in entry.usage.inodes()):
                    plan.kept.append((entry.path, category, "hard-linked elsewhere (conda clean keeps it too)"))
                else:
                    candidates.append((entry, category, "package tarball"))
        elif category == "locks":
            for entry in cache.entries["locks"]:
                if lock_is_stale(entry.path):
                    candidates.append((entry, category, "stale lock (nobody holds it)"))
                else:
                    plan.kept.append((entry.path, category, "lock is held"))
        elif category == "partial":
            candidates.extend((e, category, "stale partial download") for e in cache.entries["partial"])
        else:
            candidates.extend((e, category, category.replace("_", " ")) for e in cache.entries[category])
    kept_by_version = _newest_versions(cache, policy.keep_latest)
    for entry, category, reason in candidates:
        why = policy.keep_reason(entry) or kept_by_version.get(entry.path)
        if why:
            plan.kept.append((entry.path, category, why))
        else:
            plan.items.append(PlanItem(entry, category, reason))
    return plan


PURGE_KEEPS = ("urls.txt", "urls")


def plan_purge(cache, verdicts, policy):
    """Empty a whole cache, like ``conda clean --force-pkgs-dirs``, but keep what would break an
    environment (packages soft-linked environments point into) and the files that make the
    directory a writable cache for conda."""
    plan = CachePlan(cache)
    plan.skipped = policy.gate(cache) or busy_reason(cache, policy)
    if plan.skipped:
        return plan
    for items in list(cache.entries.values()) + [cache.other]:
        for entry in items:
            if entry.relpath in PURGE_KEEPS:
                continue
            verdict = verdicts.get(entry.path) if entry.category == "extracted" else None
            if verdict is not None and any(r.link_type == "softlink" for _e, r in verdict.referenced_by):
                plan.kept.append((entry.path, "purge", "a soft-linked environment points into it"))
                continue
            why = policy.keep_reason(entry)
            if why:
                plan.kept.append((entry.path, "purge", why))
            else:
                plan.items.append(PlanItem(entry, "purge", "purge of the whole cache"))
    return plan


def _newest_versions(cache, keep_latest):
    """``{path: reason}`` for the newest ``keep_latest`` versions of each package name, ranked among
    all tarballs and all extracted packages of the cache (in use or not)."""
    if not keep_latest:
        return {}
    kept = {}
    for entries in (cache.tarballs, cache.extracted):
        by_name = {}
        for entry in entries:
            name, version, build = split_dist(entry.dist)
            by_name.setdefault(name, []).append((version_key(version, build), entry))
        for name, versions in by_name.items():
            for _key, entry in sorted(versions, key=lambda pair: pair[0], reverse=True)[:keep_latest]:
                kept[entry.path] = "among the newest %d versions of %s" % (keep_latest, name)
    return kept


def split_dist(dist):
    """``name-version-build`` -> (name, version, build); names may contain dashes."""
    parts = dist.rsplit("-", 2)
    if len(parts) != 3:
        return dist, "", ""
    return parts[0], parts[1], parts[2]


def plan_tempfiles(environments, caches, policy, warnings):
    """``*.c~`` and ``*.trash`` files left in environment prefixes by interrupted operations.

    A root prefix contains its ``pkgs/`` and ``envs/``: caches belong to the cache plans and each
    environment is walked once, on its own.
    """
    items = []
    elsewhere = set(os.path.realpath(c.path) for c in caches)
    elsewhere.update(os.path.realpath(e.prefix) for e in environments)
    for env in environments:
        skip = elsewhere - set([os.path.realpath(env.prefix)])
        for dirpath, dirnames, filenames in os.walk(env.prefix, onerror=lambda e: warnings.path_error(e.filename, e)):
            dirnames[:] = [d for d in dirnames if os.path.realpath(os.path.join(dirpath, d)) not in skip]
            for name in filenames:
                if name.endswith(TEMPFILE_SUFFIXES):
                    path = os.path.join(dirpath, name)
                    try:
                        st = os.lstat(path)
                    except OSError as exc:
                        warnings.path_error(path, exc)
                        continue
                    if policy.min_age and policy.now - st.st_mtime < policy.min_age:
                        continue
                    items.append((env.prefix, os.path.relpath(path, env.prefix), st))
    return items


def execute(plans, tempfiles):
    """Remove every planned item under the cache's lock; measure what each filesystem gained."""
    free_before, removed, errors = {}, [], []
    for plan in plans:
        if plan.skipped or not plan.items:
            continue
        mount = filesystem(plan.cache.path)["mount"]
        free_before.setdefault(mount, statvfs_free(mount))
        try:
            with _removal.CacheDir(plan.cache.path) as root:
                for item in plan.items:
                    try:
                        if root.remove(item.entry.relpath):
                            removed.append(item.entry.path)
                    except (OSError, _removal.RemovalError) as exc:
                        errors.append("%s: %s" % (item.entry.path, exc))
        except (OSError, _removal.RemovalError) as exc:
            errors.append("%s: %s" % (plan.cache.path, exc))
    for prefix, relpath, _st in tempfiles:
        mount = filesystem(prefix)["mount"]
        free_before.setdefault(mount, statvfs_free(mount))
        try:
            with _removal.CacheDir(prefix) as root:
                if root.remove(relpath):
                    removed.append(os.path.join(prefix, relpath))
        except (OSError, _removal.RemovalError) as exc:
            errors.append("%s: %s" % (os.path.join(prefix, relpath), exc))
    freed = dict((m, statvfs_free(m) - before) for m, before in free_before.items())
    return removed, freed, errors


def _refuse_unknown_state(host):
    if host.warnings.blocking():
        raise ValueError("refusing to clean, the host's conda state is not fully known: %s"
                         % "; ".join(host.warnings.blocking()))


def clean(host, targets, policy, roots=(), pkgs_dirs=(), check_mode=False, purge=False):
    """Plan the cleanup of the host's caches and, unless ``check_mode``, execute that same plan.

    Returns a result dict (``changed``, ``plan``, ``tempfiles``, ``paths``, ``removed``,
    ``planned_bytes``, ``freed_bytes``, ``errors``).  ``purge`` empties whole caches instead of
    applying ``targets`` (see :func:`plan_purge`).  Raises ValueError for a bad cache selection,
    and when reading the host met problems (a malformed config, an unreadable directory or
    record): what is unknown might be in use, so nothing is deleted.
    """
    _refuse_unknown_state(host)
    caches = host.select_caches(roots, pkgs_dirs)
    verdicts = host.verdicts()
    categories = [TARGETS[t] for t in sorted(targets) if TARGETS[t]]
    if purge:
        plans = [plan_purge(cache, verdicts, policy) for cache in caches]
    else:
        plans = [plan_cache(cache, categories, verdicts, policy) for cache in caches]
    plan_dicts = [plan.as_dict() for plan in plans]
    # Planning sized the candidates (see CacheEntry.usage): a problem met there stops it too.
    _refuse_unknown_state(host)
    wants_tempfiles = "tempfiles" in targets and not purge
    tempfiles = plan_tempfiles(host.environments, host.caches, policy, host.warnings) if wants_tempfiles else []
    temp_paths = [os.path.join(prefix, relpath) for prefix, relpath, _st in tempfiles]
    paths = [item.entry.path for plan in plans for item in plan.items] + temp_paths
    result = {
        "changed": bool(paths),
        "plan": plan_dicts,
        "tempfiles": temp_paths,
        "paths": paths,
        "removed": [],
        "planned_bytes": sum(p.usage.reclaimable for p in plans) + sum(t[2].st_blocks * 512 for t in tempfiles),
        "freed_bytes": {},
        "errors": [],
        "skipped_caches": sum(1 for p in plans if p.skipped),
        "caches": len(plans),
    }
    if paths and not check_mode:
        removed, freed, errors = execute(plans, tempfiles)
        result.update(removed=removed, freed_bytes=freed, errors=errors, changed=bool(removed))
    return result
