# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one cleanup pipeline, for every cache kind: plan items, cache plans, execute, result, summary.

A kind (conda, pip, uv, backup's pruning) only decides what goes and what stays, and why; this
file removes exactly that, under each cache's lock, through ``_removal``, and reports it in one
shape.  It knows nothing of conda or pip.

Result shape (what every cleaning module returns): ``caches``, one per cache, each with
``path``, ``kind``, ``users``, ``skipped`` (why the whole cache is left alone), ``remove``
(``path``, ``category``, ``reason``, ``apparent_bytes``, ``disk_bytes``), ``keep`` (``category``,
``reason``, ``count``, ``paths`` when the kind lists them), ``planned_bytes`` and ``freed_bytes``;
then ``paths``, ``listing`` (one line per item, :func:`describe`; the diff), ``removed``,
``planned_bytes`` (each inode once over every plan), ``freed_bytes`` (statvfs gain per mount),
``errors`` and a one-line ``msg``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath

from ansible_collections.pkgcache.fleet.plugins.module_utils import _removal
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import act_as, authority
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, filesystem
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import statvfs_free
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results, human_bytes


class PlanItem(object):
    """A path inside a cache removed whole (a file, a link or a directory with all it holds), and why."""

    __slots__ = ("relpath", "reason", "category", "usage")

    def __init__(self, relpath, reason, usage, category=None):
        self.relpath = relpath
        self.reason = reason
        self.category = category
        self.usage = usage

    def line(self, cache):
        """What the diff shows for it: path, size on disk and reason (see :func:`describe`)."""
        return describe(self.as_dict(cache))

    def as_dict(self, cache):
        return {
            "path": posixpath.join(cache, self.relpath),
            "category": self.category,
            "reason": self.reason,
            "apparent_bytes": self.usage.apparent,
            "disk_bytes": self.usage.on_disk,
        }


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

    def authorize(self, routes):
        """Decide whose authority this cache is cleaned with, from the ``(path, namer uid)``
        routes that name it (:func:`_authority.authority`); when none is accepted the plan is
        skipped with the reason.  Returns whether it may be cleaned."""
        self.identity, self.expect, self.skipped = authority(self.path, routes)
        return self.skipped is None

    def remove(self, relpath, reason, usage, category=None):
        self.items.append(PlanItem(relpath, reason, usage, category))

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


def describe(item):
    """One removed item as people read it, from its result dict: ``path  (12.3 MiB, reason)``.
    The diff and the local command's listing both print this."""
    return "%s  (%s, %s)" % (item["path"], human_bytes(item["disk_bytes"]), item["reason"])


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
            done, failed = act_as(plan.identity, remove_planned, plan.path, relpaths, plan.expect)
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


def run(plans, check_mode, hidden=()):
    """Plan -> result; unless ``check_mode``, execute the same plans first.

    ``hidden`` plans are executed and counted in the totals but not listed under ``caches``
    (conda's tempfiles live in environment prefixes, not in caches).
    """
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
    skipped = sum(1 for plan in plans if plan.skipped)
    result["msg"] = "%s %d path(s), %s reclaimable, from %d cache(s); %d cache(s) skipped" % (
        "would remove" if check_mode else "removed", len(paths), human_bytes(result["planned_bytes"]),
        len(plans) - skipped, skipped)
    return result


def compact(cache):
    """One cache's entry with counts for lists: what a fleet-wide job keeps per host (``compact``)."""
    small = dict(cache)
    remove = small.pop("remove")
    small["remove_count"] = len(remove)
    small["remove_bytes"] = sum(item["disk_bytes"] for item in remove)
    small["keep"] = [dict((k, v) for k, v in group.items() if k != "paths") for group in cache["keep"]]
    return small


def exit_module(module, result, what, warnings=()):
    """End a cleaning module: the diff lists what goes, one line per item with its size on disk
    and why (:func:`describe`); *before* is what a run would remove, *after* what of it remains
    (nothing), so a rerun with nothing left to remove shows no diff.  A failed removal fails the
    task with everything that was removed still in the result (printable, see ``_text``)."""
    out = Results(module)
    result.pop("paths")
    listing = result.pop("listing")
    errors = result.pop("errors")
    if module.params.get("compact"):
        result["caches"] = [compact(cache) for cache in result["caches"]]
    if module._diff:
        result["diff"] = dict(before="".join(line + "\n" for line in listing), after="",
                              before_header=what, after_header=what)
    if errors:
        out.fail("removal failed for %d path(s): %s" % (len(errors), "; ".join(errors[:5])), warnings=warnings,
                 **result)
    out.exit(warnings=warnings, **result)
