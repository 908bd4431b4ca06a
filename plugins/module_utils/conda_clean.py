# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Policy-driven cleanup of conda package caches: plan first, then execute the same plan.

What may be removed comes from the domain model (:func:`conda_model.find_unused` for packages);
this module only applies targets, policies and gates to it; the pipeline (``cleanup``) removes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import posixpath
import stat
import time

from ansible_collections.pkgcache.fleet.plugins.module_utils import cleanup, conda_envs, conda_mamba, options
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import namer_of
from ansible_collections.pkgcache.fleet.plugins.module_utils._procs import lock_is_held, process_paths, process_using
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, filesystem, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import CachePlan
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host, refuse_unknown_state, why_environments_unknown
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import (
    CACHE_MARKERS, read_history, strip_tarball_suffix, version_key)

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
TEMPFILES = "tempfiles"
TRASH = "trash"


class Policy(object):
    """Which candidates to keep anyway, and when to leave a cache alone."""

    def __init__(self, min_age=0, keep_latest=0, exclude=(), busy_age=3600, when_free_below=None,
                 when_cache_above=None, now=None, keep_revisions=0):
        self.min_age = min_age
        self.keep_latest = keep_latest
        self.keep_revisions = keep_revisions
        self.rollback = {}  # dist -> why a rollback needs it (see rollback_dists)
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
                return "free space %s is not below %s" % (
                    human_bytes(free), options.format_free_threshold(self.when_free_below))
        if self.when_cache_above is not None:
            size = cache.total().on_disk
            if size <= self.when_cache_above:
                return "cache uses %s, not above %s" % (human_bytes(size), options.format_size(self.when_cache_above))
        return None

    def keep_reason(self, entry):
        """Why a candidate is kept by policy, or None."""
        for pattern in self.exclude:
            if fnmatch.fnmatchcase(entry.dist, pattern):
                return "excluded by pattern %r" % pattern
        if entry.dist in self.rollback:
            return self.rollback[entry.dist]
        age = self.now - entry.mtime
        if self.min_age and age < self.min_age:
            return "newer than min_age (%ds old)" % int(age)
        return None


def rollback_dists(environments, keep_revisions, warnings):
    """``{dist: reason}``: what ``conda install --rev`` needs to take an environment back to any of
    its ``keep_revisions`` revisions before the current one (``conda-meta/history``; conda#5347).
    The current one needs nothing more: its records keep its packages."""
    kept = {}
    if not keep_revisions:
        return kept
    for env in environments:
        history, error = read_history(env.prefix)
        if error is not None:
            warnings.path_error(os.path.join(env.prefix, "conda-meta", "history"), error)
            continue
        earlier = history.revisions[:-1][-keep_revisions:]
        for offset, state in enumerate(earlier):
            back = len(earlier) - offset
            for dist in state:
                kept.setdefault(dist, "needed to roll %s back %d revision(s) (keep_revisions=%d)" % (
                    env.prefix, back, keep_revisions))
    return kept


def busy_reason(cache, policy):
    """A cache in active use: mamba's lock on it held (``<pkgs_dir>/<dirname>.lock``, held by
    every micromamba install for its whole transaction), a fresh ``.partial`` download, or a
    process working inside it."""
    lock = os.path.join(cache.path, conda_mamba.dir_lock_name(cache.path))
    if lock_is_held(lock):
        return "locked: %s is held by another process" % lock
    for entry in cache.entries["partial"]:
        if policy.now - entry.mtime < policy.busy_age:
            return "download in progress (%s is %ds old)" % (entry.relpath, int(policy.now - entry.mtime))
    pid = process_using(os.path.realpath(cache.path), policy.process_paths())
    if pid is not None:
        return "in use by process %s" % pid
    return None


def _start_plan(cache, routes, policy, tool):
    """A plan (of kind ``tool``, conda or mamba) whose authority is decided (see
    ``CachePlan.authorize``) and whose gates are open, or one skipped with the reason."""
    plan = CachePlan(cache.path, tool)
    if plan.authorize(routes):
        plan.skipped = policy.gate(cache) or busy_reason(cache, policy)
    return plan


def plan_cache(cache, categories, verdicts, policy, routes, unknown_environments=None, tool="conda"):
    """The plan for one cache: candidates of the chosen categories minus what must be kept.
    ``unknown_environments`` (why some environments may be unknown) keeps every extracted package."""
    plan = _start_plan(cache, routes, policy, tool)
    if plan.skipped:
        return plan
    candidates = []
    for category in categories:
        if category == "unused":
            for package in cache.extracted:
                verdict = verdicts[package.path]
                if verdict.unused and unknown_environments:
                    plan.keep(unknown_environments, package.path, category)
                elif verdict.unused:
                    candidates.append((package, category, verdict.reason))
                else:
                    plan.keep(verdict.reason, package.path, category)
        elif category == "tarballs":
            for entry in cache.tarballs:
                if any(nlink > seen for _k, seen, nlink in entry.usage.inodes()):
                    plan.keep("hard-linked elsewhere (conda clean keeps it too)", entry.path, category)
                else:
                    candidates.append((entry, category, "package tarball"))
        elif category == "locks":
            candidates.extend((e, category, "stale lock (nobody holds it)") for e in cache.entries["locks"])
        elif category == "partial":
            candidates.extend((e, category, "stale partial download") for e in cache.entries["partial"])
        else:
            candidates.extend((e, category, category.replace("_", " ")) for e in cache.entries[category])
    kept_by_version = _newest_versions(cache, policy.keep_latest)
    for entry, category, reason in candidates:
        why = policy.keep_reason(entry) or kept_by_version.get(entry.path) or _item_busy(entry)
        if why:
            plan.keep(why, entry.path, category)
        else:
            plan.remove(entry.relpath, reason, entry.usage, category)
    return plan


def _item_busy(entry):
    """A lock someone holds, or a package or archive mamba is working on (its own lock,
    ``<file>.lock`` or ``<dir>/<dir>.lock``, held): kept, whatever else says it may go."""
    if entry.category == "locks":
        return "lock is held" if lock_is_held(entry.path) else None
    if entry.category not in ("tarballs", "extracted"):
        return None
    lock = conda_mamba.item_lock(entry.path)
    return "busy: %s is held by another process" % lock if lock_is_held(lock) else None


def plan_purge(cache, verdicts, policy, routes, tool="conda"):
    """Empty a whole cache, like ``conda clean --force-pkgs-dirs``, but keep what would break an
    environment (packages soft-linked environments point into) and the files that make the
    directory a writable cache for conda."""
    plan = _start_plan(cache, routes, policy, tool)
    if plan.skipped:
        return plan
    for items in list(cache.entries.values()) + [cache.other]:
        for entry in items:
            if entry.relpath in CACHE_MARKERS:
                continue
            verdict = verdicts.get(entry.path) if entry.category == "extracted" else None
            if verdict is not None and any(r.link_type == "softlink" for _e, r in verdict.referenced_by):
                plan.keep("a soft-linked environment points into it", entry.path, "purge")
                continue
            why = policy.keep_reason(entry) or _item_busy(entry)
            if why:
                plan.keep(why, entry.path, "purge")
            else:
                plan.remove(entry.relpath, "purge of the whole cache", entry.usage, "purge")
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


def plan_tempfiles(environments, caches, policy, warnings, homes, targets=(TEMPFILES,)):
    """Leftovers of interrupted operations in environment prefixes, one plan per prefix, removed
    with the credentials of the prefix's owner (see ``_authority``): for the ``tempfiles``
    target conda's ``*.c~`` and ``*.trash`` files, for ``trash`` mamba's ``*.mamba_trash`` (what
    it renamed away because it could not delete it, file or directory) and the entries of
    ``conda-meta/mamba_trash.txt``, then that list itself once nothing it names remains.

    A root prefix contains its ``pkgs/`` and ``envs/``: caches belong to the cache plans and each
    environment is walked once, on its own.
    """
    plans = []
    elsewhere = set(os.path.realpath(c.path) for c in caches)
    elsewhere.update(os.path.realpath(e.prefix) for e in environments)
    suffixes = dict((suffix, TEMPFILES) for suffix in TEMPFILE_SUFFIXES) if TEMPFILES in targets else {}
    if TRASH in targets:
        suffixes[conda_mamba.TRASH_SUFFIX] = TRASH
    for env in environments:
        plan = CachePlan(env.prefix, TEMPFILES)
        if not plan.authorize([(env.prefix, namer_of(env.prefix, homes))]):
            continue
        found = dict(_leftovers(env.prefix, suffixes, elsewhere, warnings))
        if TRASH in targets:
            listed = conda_mamba.trash_entries(env.prefix, warnings, plan.identity)
            found.update((rel, TRASH) for rel in listed if os.path.lexists(os.path.join(env.prefix, rel)))
        for rel, category in sorted(found.items()):
            usage = _young_or_usage(os.path.join(env.prefix, rel), policy, warnings)
            if usage is not None:
                plan.remove(rel, "temporary file" if category == TEMPFILES else "mamba trash", usage, category)
        if TRASH in targets:
            _plan_trash_index(plan, env.prefix, listed, warnings)
        if plan.items:
            plans.append(plan)
    return plans


def _leftovers(prefix, suffixes, elsewhere, warnings):
    """``(prefix-relative path, category)`` of every file under ``prefix`` whose name ends with one
    of ``suffixes`` (``{suffix: category}``) and every directory mamba trashed (one item each),
    skipping the caches and other prefixes inside it."""
    skip = elsewhere - set([os.path.realpath(prefix)])
    for dirpath, dirnames, filenames in os.walk(prefix, onerror=lambda e: warnings.path_error(e.filename, e)):
        kept = []
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if _category_of(name, suffixes) == TRASH and not os.path.islink(path):
                yield os.path.relpath(path, prefix), TRASH
            elif os.path.realpath(path) not in skip:
                kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            category = _category_of(name, suffixes)
            if category:
                yield os.path.relpath(os.path.join(dirpath, name), prefix), category


def _category_of(name, suffixes):
    for suffix, category in suffixes.items():
        if name.endswith(suffix):
            return category
    return None


def _young_or_usage(path, policy, warnings):
    """The DiskUsage of a leftover, or None when it is younger than ``min_age`` or unreadable."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        warnings.path_error(path, exc)
        return None
    if policy.min_age and policy.now - st.st_mtime < policy.min_age:
        return None
    if stat.S_ISDIR(st.st_mode):
        return walk(path, on_error=warnings.path_error)
    usage = DiskUsage()
    usage.add(st)
    return usage


def _plan_trash_index(plan, prefix, listed, warnings):
    """``conda-meta/mamba_trash.txt`` goes once everything it lists goes (as mamba's own
    ``clean_trash_files`` does)."""
    index = os.path.join(prefix, conda_mamba.TRASH_INDEX)
    if not os.path.isfile(index):
        return
    planned = set(item.relpath for item in plan.items)
    if all(rel in planned or not os.path.lexists(os.path.join(prefix, rel)) for rel in listed):
        try:
            st = os.lstat(index)
        except OSError as exc:
            warnings.path_error(index, exc)
            return
        usage = DiskUsage()
        usage.add(st)
        plan.remove(conda_mamba.TRASH_INDEX, "mamba trash index, nothing it lists remains", usage, TRASH)


def touched_environments(environments, plans):
    """Environments whose packages the plans touch: linked from a cache they remove from, or
    naming a dist they remove (by its record's file name, which even a corrupt record has)."""
    caches = set(os.path.realpath(plan.path) for plan in plans if plan.items and not plan.skipped)
    dists = set(split_tarball(posixpath.basename(item.relpath)) for plan in plans for item in plan.items)
    touched = []
    for env in environments:
        for record in env.records:
            epd = record.extracted_package_dir
            if record.dist in dists or (epd and os.path.realpath(os.path.dirname(epd)) in caches):
                touched.append(env)
                break
    return touched


def split_tarball(name):
    return strip_tarball_suffix(name) or name


def plan(host, targets, policy, roots=(), pkgs_dirs=(), purge=False):
    """The plans for the host's caches: ``(plans, tempfiles, restricted)``, the cache plans, the
    plans of leftovers in environment prefixes and why environments may be unknown (or None).

    ``purge`` empties whole caches instead of applying ``targets`` (see :func:`plan_purge`).
    Raises ValueError for a bad cache selection, and when reading the host met problems (a
    malformed config, an unreadable directory or record): what is unknown might be in use, so
    nothing is deleted.
    """
    refuse_unknown_state(host)
    unknown = why_environments_unknown(host)
    if unknown and purge:
        raise ValueError("refusing to purge: %s" % unknown)
    caches = host.select_caches(roots, pkgs_dirs)
    verdicts = host.verdicts()
    policy.rollback = rollback_dists(host.environments, policy.keep_revisions, host.warnings)
    categories = [TARGETS[t] for t in sorted(targets) if TARGETS[t]]
    if purge:
        plans = [plan_purge(cache, verdicts, policy, host.routes(cache), host.tool(cache)) for cache in caches]
    else:
        plans = [plan_cache(cache, categories, verdicts, policy, host.routes(cache), unknown, host.tool(cache))
                 for cache in caches]
    # Planning sized the candidates (see CacheEntry.usage): a problem met there stops it too.
    refuse_unknown_state(host)
    in_prefixes = [] if purge else [t for t in (TEMPFILES, TRASH) if t in targets]
    tempfiles = plan_tempfiles(host.environments, host.caches, policy, host.warnings, host.homes(),
                               in_prefixes) if in_prefixes else []
    return plans, tempfiles, unknown


def clean(host, targets, policy, roots=(), pkgs_dirs=(), check_mode=False, purge=False, target=None,
          verify=False):
    """:func:`plan` the cleanup of the host's caches and, unless ``check_mode``, execute that same
    plan, cut down to ``target`` (:class:`cleanup.Target`) when one is given; with ``verify`` the
    environments the plans touch (:func:`touched_environments`) are checked before and after
    (``conda_envs.verified_run``).

    Returns the pipeline's result (:func:`cleanup.run`) plus ``tempfiles``, ``skipped_caches`` and
    ``verified_environments`` (None without ``verify``).
    """
    plans, tempfiles, unknown = plan(host, targets, policy, roots, pkgs_dirs, purge)
    touched = touched_environments(host.environments, plans) if verify else None
    result, verified = conda_envs.verified_run(
        touched, check_mode, lambda: cleanup.run(plans, check_mode, hidden=tempfiles, target=target))
    result["verified_environments"] = verified
    result["tempfiles"] = [path for p in tempfiles for path in p.paths]
    result["skipped_caches"] = sum(1 for p in plans if p.skipped)
    result["restricted"] = unknown
    result["plan"] = [_legacy_plan(cache) for cache in result["caches"]]
    return result


def _legacy_plan(cache):
    """The per-cache plan as conda_clean returned it before the pipeline (``plan``, ``kept`` as a
    list of paths); kept for existing consumers, ``caches`` is the shape to read."""
    legacy = dict((k, v) for k, v in cache.items() if k not in ("keep", "kind", "users", "planned_bytes", "freed_bytes"))
    legacy["kept"] = [{"path": path, "category": group["category"], "reason": group["reason"]}
                      for group in cache["keep"] for path in group["paths"]]
    return legacy


def argument_spec():
    """conda_clean's options (the module's argument spec, and the local command's flags)."""
    return options.argument_spec(
        options.USERS, options.ENVIRONMENT, options.CONDA_CACHES, options.COMPACT, options.TARGET,
        options.VERIFY_ENVIRONMENTS,
        targets=dict(type="list", elements="str", default=["all"], choices=["all"] + sorted(TARGETS)),
        min_age=options.duration("0"),
        keep_latest=dict(type="int", default=0),
        keep_revisions=dict(type="int", default=0),
        exclude=dict(type="list", elements="str", default=[]),
        when_free_below=options.size(),
        when_cache_above=options.size(),
        busy_age=options.duration("1h"),
        purge=dict(type="bool", default=False),
        confirm_purge=dict(type="bool", default=False),
    )


def policy_from(params):
    return Policy(
        min_age=options.parse_duration(params["min_age"], "min_age"),
        keep_latest=params["keep_latest"],
        keep_revisions=params["keep_revisions"],
        exclude=params["exclude"],
        busy_age=options.parse_duration(params["busy_age"], "busy_age"),
        when_free_below=options.parse_free_threshold(params["when_free_below"] or None, "when_free_below"),
        when_cache_above=options.parse_size(params["when_cache_above"] or None, "when_cache_above"),
    )


def load(params):
    """conda_clean's options read: ``(host, arguments of clean, cleanup.Target)``.  OptionError
    before anything is read."""
    if params["purge"] and not params["confirm_purge"]:
        raise options.OptionError("purge removes whole caches; set confirm_purge=true to mean it")
    for name in ("keep_latest", "keep_revisions"):
        if params[name] < 0:
            raise options.OptionError("%s must be 0 or more" % name)
    policy = policy_from(params)
    target = cleanup.Target.from_options(params)
    accounts = options.select_homes(params["users"])
    options.check_sight(accounts)
    targets = set(TARGETS) if "all" in params["targets"] else set(params["targets"])
    host = Host.load(accounts, params["roots"], options.shell_environment(params["environment"]))
    return host, dict(targets=targets, policy=policy, roots=params["roots"], pkgs_dirs=params["pkgs_dirs"],
                      purge=params["purge"], verify=params["verify_environments"]), target


def clean_from_options(params, check_mode):
    """What conda_clean does with its options: ``(result, warnings)``.  OptionError before
    anything is read; ValueError when what was read leaves the state unknown (nothing removed)."""
    host, how, target = load(params)
    result = clean(host, check_mode=check_mode, target=target, **how)
    return result, host.warnings
