# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one cleanup pipeline, for every cache kind: plan items, cache plans, execute, result, summary.

A kind (conda, pip, uv, backup's pruning) only decides what goes and what stays, and why; this
file removes exactly that, under each cache's lock, through ``_removal``, and reports it in one
shape.  It knows nothing of conda or pip.

Result shape (what every cleaning module returns): ``caches``, one per cache, each with
``path``, ``kind``, ``users``, ``skipped`` (why the whole cache is left alone), ``remove``
(``path``, ``category``, ``reason``, ``apparent_bytes``, ``disk_bytes``; under a target also
``order``, ``last_used`` and ``running_total_bytes``), ``keep`` (``category``, ``reason``,
``count``, ``paths`` when the kind lists them), ``planned_bytes`` and ``freed_bytes``; then
``paths``, ``listing`` (one line per item, :func:`describe`; the diff), ``removed``,
``planned_bytes`` (each inode once over every plan), ``freed_bytes`` (statvfs gain per mount),
``target`` (per filesystem, see :class:`Target`), ``errors`` and a one-line ``msg``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import os
import posixpath

from ansible_collections.pkgcache.fleet.plugins.module_utils import _removal, options
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import act_as, authority
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, filesystem, last_use, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import statvfs_free
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results, human_bytes


class PlanItem(object):
    """A path inside a cache removed whole (a file, a link or a directory with all it holds), and why.

    Items of one ``unit`` (by default each item is its own) are taken or kept together by a
    target (pip's HTTP metadata file and its body); a target sets ``order``, ``last_used`` and
    ``running_total`` on what it takes.
    """

    __slots__ = ("relpath", "reason", "category", "usage", "unit", "order", "last_used", "running_total")

    def __init__(self, relpath, reason, usage, category=None, unit=None):
        self.relpath = relpath
        self.reason = reason
        self.category = category
        self.usage = usage
        self.unit = relpath if unit is None else unit
        self.order = self.last_used = self.running_total = None

    def line(self, cache):
        """What the diff shows for it: path, size on disk and reason (see :func:`describe`)."""
        return describe(self.as_dict(cache))

    def as_dict(self, cache):
        item = {
            "path": posixpath.join(cache, self.relpath),
            "category": self.category,
            "reason": self.reason,
            "apparent_bytes": self.usage.apparent,
            "disk_bytes": self.usage.on_disk,
        }
        if self.order is not None:
            item.update(order=self.order, last_used=self.last_used, running_total_bytes=self.running_total)
        return item


class CachePlan(object):
    """What one cache loses, what it keeps and why; or why it is skipped whole."""

    def __init__(self, path, kind, users=()):
        self.path = path
        self.kind = kind
        self.users = list(users)
        self.items = []
        self.kept = {}  # (category, reason) -> [count, [paths]]
        self.skipped = None
        self.removed = []
        self.identity = None  # whose credentials the removal runs with (see authorize)
        self.expect = None  # (st_dev, st_ino, st_uid) of the directory when it was planned
        # Removes the planned paths (a kind whose own tool must do it sets it): called as
        # ``remover(path, relpaths, expect)`` with the plan's identity, returns ``(done, errors)``.
        self.remover = remove_planned

    def authorize(self, routes):
        """Decide whose authority this cache is cleaned with, from the ``(path, namer uid)``
        routes that name it (:func:`_authority.authority`); when none is accepted the plan is
        skipped with the reason.  Returns whether it may be cleaned."""
        self.identity, self.expect, self.skipped = authority(self.path, routes)
        return self.skipped is None

    def remove(self, relpath, reason, usage, category=None, unit=None):
        self.items.append(PlanItem(relpath, reason, usage, category, unit))

    def keep(self, reason, path=None, category=None, count=1):
        """Record a candidate left in place; kinds that keep many (pip's young HTTP files) count them."""
        group = self.kept.setdefault((category, reason), [0, []])
        group[0] += count
        if path is not None:
            group[1].append(path)

    def path_of(self, item):
        return posixpath.join(self.path, item.relpath)

    @property
    def paths(self):
        return [self.path_of(item) for item in self.items]

    @property
    def usage(self):
        return usage_of(self.items)

    def as_dict(self):
        usage = self.usage
        removed = set(self.removed)
        return {
            "path": self.path,
            "kind": self.kind,
            "users": [user.name for user in self.users],
            "skipped": self.skipped,
            "remove": [item.as_dict(self.path) for item in self.items],
            "keep": [{"category": category, "reason": reason, "count": count, "paths": paths}
                     for (category, reason), (count, paths) in self.kept.items()],
            "apparent_bytes": usage.apparent,
            "disk_bytes": usage.on_disk,
            "reclaimable_bytes": usage.reclaimable,
            "planned_bytes": usage.reclaimable,
            "freed_bytes": usage_of(i for i in self.items if self.path_of(i) in removed).reclaimable,
        }


class Target(object):
    """Clean to a target: of what the kinds planned, take per filesystem the oldest items first
    (by :func:`_diskusage.last_use`, over every cache on that filesystem) until ``free`` (a
    threshold as ``options.parse_free_threshold`` reads it) is available on the filesystem and no
    cache is above ``max_cache_size`` bytes on disk; keep the rest.

    Free space is predicted as statvfs's available bytes plus what the items taken so far free
    together (each inode once, :attr:`DiskUsage.reclaimable`), a cache's size as its on-disk size
    minus what its taken items free; both are what a real run then measures, so check mode
    predicts it exactly and a target met takes nothing.
    """

    def __init__(self, free=None, max_cache_size=None):
        self.free = free
        self.max_cache_size = max_cache_size

    @classmethod
    def from_options(cls, params):
        """The ``target_free`` and ``max_cache_size`` options (fragment pkgcache.fleet.target)."""
        return cls(options.parse_free_threshold(params["target_free"] or None, "target_free"),
                   options.parse_size(params["max_cache_size"] or None, "max_cache_size"))

    def __bool__(self):
        return self.free is not None or self.max_cache_size is not None

    __nonzero__ = __bool__

    @property
    def met_reason(self):
        parts = []
        if self.free is not None:
            parts.append("%s free" % options.format_free_threshold(self.free))
        if self.max_cache_size is not None:
            parts.append("cache at most %s" % options.format_size(self.max_cache_size))
        return "target met (%s)" % ", ".join(parts)

    def apply(self, plans):
        """Cut the plans down to the target; the per-filesystem summaries (``target`` of the result)."""
        by_device = {}
        for plan in plans:
            if not plan.skipped:
                by_device.setdefault(os.stat(plan.path).st_dev, []).append(plan)
        return [self._apply_filesystem(group) for group in sorted(by_device.values(), key=lambda g: g[0].path)]

    def _apply_filesystem(self, plans):
        fs = filesystem(plans[0].path)
        wanted = None
        if self.free is not None:
            kind, value = self.free
            wanted = value if kind == "bytes" else int(math.ceil(fs["total_bytes"] * value / 100.0))
        sizes = dict((plan.path, walk(plan.path).on_disk) for plan in plans) if self.max_cache_size is not None else {}
        units = []
        for plan in plans:
            grouped = {}
            for item in plan.items:
                grouped.setdefault(item.unit, []).append(item)
            for unit, items in grouped.items():
                units.append((max(last_use(plan.path_of(item)) for item in items), plan.path, unit, plan, items))
            plan.items = []
        units.sort(key=lambda unit: unit[:3])
        gained = DiskUsage()
        cache_gained = dict((plan.path, DiskUsage()) for plan in plans)
        taken, stopped_at = 0, None
        for last_used, path, _unit, plan, items in units:
            free_met = wanted is None or fs["available_bytes"] + gained.reclaimable >= wanted
            size_met = not sizes or sizes[path] - cache_gained[path].reclaimable <= self.max_cache_size
            if free_met and size_met:
                for item in items:
                    plan.keep(self.met_reason, plan.path_of(item), item.category)
                continue
            taken += 1
            for item in items:
                gained.update(item.usage)
                cache_gained[path].update(item.usage)
            for item in items:
                item.order, item.last_used, item.running_total = taken, last_used, gained.reclaimable
            plan.items.extend(items)
            stopped_at = plan.path_of(items[-1])
        free_after = fs["available_bytes"] + gained.reclaimable
        sizes_after = dict((path, size - cache_gained[path].reclaimable) for path, size in sizes.items())
        return {
            "mount": fs["mount"],
            "caches": [plan.path for plan in plans],
            "target_free": options.format_free_threshold(self.free) if self.free is not None else None,
            "wanted_free_bytes": wanted,
            "total_bytes": fs["total_bytes"],
            "available_bytes": fs["available_bytes"],
            "planned_bytes": gained.reclaimable,
            "free_after_bytes": free_after,
            "max_cache_size": options.format_size(self.max_cache_size) if sizes else None,
            "cache_sizes": dict((path, {"size_bytes": size, "size_after_bytes": sizes_after[path]})
                                for path, size in sizes.items()),
            "taken": taken,
            "kept": len(units) - taken,
            "stopped_at": stopped_at,
            "met": (wanted is None or free_after >= wanted) and all(
                size <= self.max_cache_size for size in sizes_after.values()),
        }


def describe(item):
    """One removed item as people read it, from its result dict: ``path  (12.3 MiB, reason)``,
    under a target with its place and the running total (``#3, 40.1 MiB so far``).  The diff and
    the local command's listing both print this."""
    line = "%s  (%s, %s)" % (item["path"], human_bytes(item["disk_bytes"]), item["reason"])
    if item.get("order") is not None:
        line += "  #%d, %s so far" % (item["order"], human_bytes(item["running_total_bytes"]))
    return line


def describe_target(summary):
    """One filesystem's target summary as people read it."""
    wanted = [] if summary["target_free"] is None else ["%s free" % summary["target_free"]]
    wanted += [] if summary["max_cache_size"] is None else ["caches at most %s" % summary["max_cache_size"]]
    return "target %s on %s: %s; %d taken oldest-first, %d kept%s" % (
        " and ".join(wanted), summary["mount"], "met" if summary["met"] else "not met", summary["taken"],
        summary["kept"], ", stopped at %s" % summary["stopped_at"] if summary["stopped_at"] else "")


def usage_of(items):
    """Disk usage of plan items together, each inode once."""
    total = DiskUsage()
    for item in items:
        total.update(item.usage)
    return total


def execute(plans):
    """Remove every planned path under its cache's lock, with the credentials the plan was
    authorized for; measure what each filesystem gained.

    Each plan records what it lost (``plan.removed``); returns ``(removed, freed, errors)``.  An
    error stops nothing else: whatever was removed is always reported.
    """
    free_before, removed, errors = {}, [], []
    for plan in plans:
        if plan.skipped or not plan.items:
            continue
        mount = filesystem(plan.path)["mount"]
        free_before.setdefault(mount, statvfs_free(mount))
        relpaths = [item.relpath for item in plan.items]
        try:
            done, failed = act_as(plan.identity, plan.remover, plan.path, relpaths, plan.expect)
        except Exception as exc:  # pylint: disable=broad-except  # what was removed must still be reported
            done, failed = [], ["%s: %s" % (plan.path, exc)]
        plan.removed.extend(posixpath.join(plan.path, relpath) for relpath in done)
        removed.extend(posixpath.join(plan.path, relpath) for relpath in done)
        errors.extend(failed)
    freed = dict((m, statvfs_free(m) - before) for m, before in free_before.items())
    return removed, freed, errors


def remove_planned(path, relpaths, expect=None):
    """``(removed relpaths, errors)``: the removal itself, in whatever process runs it.  No error
    loses what was already removed."""
    done, errors = [], []
    try:
        with _removal.CacheDir(path, expect=expect) as root:
            for relpath in relpaths:
                try:
                    if root.remove(relpath):
                        done.append(relpath)
                except Exception as exc:  # pylint: disable=broad-except  # reported per path
                    errors.append("%s: %s" % (posixpath.join(path, relpath), exc))
    except (OSError, _removal.RemovalError) as exc:
        errors.append("%s: %s" % (path, exc))
    return done, errors


def run(plans, check_mode, hidden=(), target=None):
    """Plan -> result; unless ``check_mode``, execute the same plans first.

    ``hidden`` plans are executed and counted in the totals but not listed under ``caches``
    (conda's tempfiles live in environment prefixes, not in caches); a ``target`` (:class:`Target`)
    cuts the listed plans down first, and the result's ``target`` sums it up (else null).
    """
    summaries = target.apply(plans) if target else None
    every = list(plans) + list(hidden)
    paths = [path for plan in every for path in plan.paths]
    result = {
        "changed": bool(paths),
        "paths": paths,
        "listing": [item.line(plan.path) for plan in every for item in plan.items],
        "removed": [],
        "planned_bytes": usage_of(item for plan in every for item in plan.items).reclaimable,
        "freed_bytes": {},
        "errors": [],
    }
    if paths and not check_mode:
        removed, freed, errors = execute(every)
        result.update(removed=removed, freed_bytes=freed, errors=errors, changed=bool(removed))
    result["caches"] = [plan.as_dict() for plan in plans]
    result["target"] = summaries
    skipped = sum(1 for plan in plans if plan.skipped)
    result["msg"] = "%s %d path(s), %s reclaimable, from %d cache(s); %d cache(s) skipped" % (
        "would remove" if check_mode else "removed", len(paths), human_bytes(result["planned_bytes"]),
        len(plans) - skipped, skipped)
    if summaries is not None:
        result["msg"] += "; target %s on %d of %d filesystem(s)" % (
            "met" if all(s["met"] for s in summaries) else "not met", sum(1 for s in summaries if s["met"]),
            len(summaries))
    return result


def compact(cache):
    """One cache's entry with counts for lists: what a fleet-wide job keeps per host (``compact``)."""
    small = dict(cache)
    remove = small.pop("remove")
    small["remove_count"] = len(remove)
    small["remove_bytes"] = sum(item["disk_bytes"] for item in remove)
    small["keep"] = [dict((k, v) for k, v in group.items() if k != "paths") for group in cache["keep"]]
    return small


def broken_environments(result):
    """The failure a clean that broke environments ends with (its ``verified_environments``,
    see ``conda_envs.verified_run``), or None."""
    broken = (result.get("verified_environments") or {}).get("broken")
    if not broken:
        return None
    return "environment(s) no longer whole after the clean: %s" % "; ".join(
        "%s (%s)" % (env["path"], ", ".join("%d %s" % (n, kind) for kind, n in sorted(env["problems"].items())))
        for env in broken)


def exit_module(module, result, what, warnings=()):
    """End a cleaning module: the diff lists what goes, one line per item with its size on disk
    and why (:func:`describe`); *before* is what a run would remove, *after* what of it remains
    (nothing), so a rerun with nothing left to remove shows no diff.  A failed removal, or
    environments no longer whole afterwards (:func:`broken_environments`), fails the task with
    everything that was removed still in the result (printable, see ``_text``)."""
    out = Results(module)
    failure = broken_environments(result)
    result.pop("paths")
    listing = result.pop("listing")
    errors = result.pop("errors")
    if module.params.get("compact"):
        result["caches"] = [compact(cache) for cache in result["caches"]]
    if module._diff:
        result["diff"] = dict(before="".join(line + "\n" for line in listing), after="",
                              before_header=what, after_header=what)
    if errors:
        failure = "; ".join(filter(None, ["removal failed for %d path(s): %s" % (len(errors), "; ".join(errors[:5])),
                                          failure]))
    if failure:
        summary = result.pop("msg")
        out.fail("%s (%s)" % (failure, summary), warnings=warnings, **result)
    out.exit(warnings=warnings, **result)


def clean_module(module, clean_from_options, what):
    """The run of a cleaning module whose kind plans from its options alone
    (``clean_from_options(params, warn, check_mode)``): a bad option fails the task before
    anything is read, the result ends it as :func:`exit_module` says (*what* heads the diff)."""
    out = Results(module)
    try:
        result = clean_from_options(module.params, out.warn, module.check_mode)
    except ValueError as exc:
        out.fail(str(exc))
    exit_module(module, result, what)
