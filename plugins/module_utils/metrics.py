# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's caches as Prometheus gauges, in a node_exporter textfile-collector file.

Input is what the modules return, printable (``_text``): the facts (``conda_cache``,
``pip_cache``, ``rattler_cache``, as ``facts.gather`` or ``ansible_facts`` hold them) and the
results of real cleans (``conda_clean``, ``pip_cache_clean``, ``rattler_cache_clean``).  Every
cache is labelled with its ``tool``: conda, mamba, pip, uv, rattler.  Output is one file, ``pkgcache.prom``, replaced
atomically so the collector never reads half of it.  Base units, ``_bytes`` for sizes,
``_timestamp_seconds`` for times, no sample timestamps (node_exporter refuses them).

The last clean of a tool survives runs that do not clean it (a facts-only run, a failed clean):
its two gauges are carried over from the file being replaced.  Standard library only; the local
command imports it on hosts without Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import write_atomic
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import RECLAIMABLE_CATEGORIES

FILENAME = "pkgcache.prom"

SIZE = "pkgcache_cache_size_bytes"
RECLAIMABLE = "pkgcache_cache_reclaimable_bytes"
CATEGORY_RECLAIMABLE = "pkgcache_cache_category_reclaimable_bytes"
LAST_CLEAN = "pkgcache_last_clean_timestamp_seconds"
LAST_REMOVED = "pkgcache_last_clean_removed_bytes"

HELP = (
    (SIZE, "Bytes on disk of one package cache, each inode once (what du shows)."),
    (RECLAIMABLE, "Bytes removing everything safe to remove from one cache would free (what df would gain)."),
    (CATEGORY_RECLAIMABLE, "Reclaimable bytes of one category of a cache's content."),
    (LAST_CLEAN, "Unix time of the last clean of a tool's caches that finished without errors."),
    (LAST_REMOVED, "Bytes the last clean of a tool's caches that finished without errors freed."),
)
CARRIED = (LAST_CLEAN, LAST_REMOVED)
_CARRIED_LINE = re.compile(r'^(%s)\{tool="([a-z]+)"\} ([0-9.e+]+)$' % "|".join(CARRIED))


def escape_label(value):
    """A label value as the exposition format quotes it: backslash, double quote and line feed
    escaped.  *value* is printable (valid UTF-8); a parser gives it back unchanged."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name, labels, value):
    inner = ",".join('%s="%s"' % (key, escape_label(text)) for key, text in labels)
    return "%s{%s} %d" % (name, inner, value)


# The facts that list caches, and the tool of a cache whose facts carry no ``tool`` field.
CACHE_FACTS = (("conda_cache", "conda"), ("pip_cache", "pip"), ("rattler_cache", "rattler"))


def cache_entries(facts):
    """``(tool, path, cache)`` for every existing cache the host's facts list, whatever the tool:
    conda's list (conda and mamba caches), pip's and rattler's dicts keyed by path (pip, uv, rattler)."""
    for name, default_tool in CACHE_FACTS:
        caches = ((facts or {}).get(name) or {}).get("caches") or ()
        if isinstance(caches, dict):
            listed = sorted((path, cache) for path, cache in caches.items() if isinstance(cache, dict))
        else:
            listed = [(cache.get("path"), cache) for cache in caches if isinstance(cache, dict)]
        for path, cache in listed:
            if cache.get("exists", True):
                yield cache.get("tool") or default_tool, path, cache


def cache_sizes(cache):
    """``(disk bytes, reclaimable bytes, [(category, reclaimable bytes)])`` of one cache's facts.

    Reclaimable is what that tool's clean may free: conda's reclaimable categories, a pip
    cache's sections (a uv cache's buckets), a rattler cache's unused packages only (its other
    kinds, repodata and pixi's uv-cache, are not cleaned)."""
    if "unused_reclaimable_bytes" in cache:
        unused = int(cache["unused_reclaimable_bytes"] or 0)
        return int(cache["usage"]["disk_bytes"]), unused, [("unused", unused)]
    if isinstance(cache.get("usage"), dict):
        return (int(cache["usage"]["disk_bytes"]), int(cache["usage"]["reclaimable_bytes"]),
                sorted((name, part["reclaimable_bytes"]) for name, part in (cache.get("sections") or {}).items()))
    categories = cache.get("categories") or {}
    return (int(cache.get("disk_bytes") or 0), int(cache.get("reclaimable_bytes") or 0),
            [(name, categories[name]["reclaimable_bytes"]) for name in RECLAIMABLE_CATEGORIES if name in categories])


def cache_samples(facts):
    """``{metric: [line]}`` of the size gauges, from the ``conda_cache``, ``pip_cache`` and
    ``rattler_cache`` facts."""
    samples = dict((name, []) for name, _text in HELP)
    for tool, path, cache in cache_entries(facts):
        size, reclaimable, categories = cache_sizes(cache)
        labels = (("tool", tool), ("path", path))
        samples[SIZE].append(_sample(SIZE, labels, size))
        samples[RECLAIMABLE].append(_sample(RECLAIMABLE, labels, reclaimable))
        samples[CATEGORY_RECLAIMABLE].extend(
            _sample(CATEGORY_RECLAIMABLE, labels + (("category", category),), value) for category, value in categories)
    return samples


def last_cleans(cleaned, now):
    """``{tool: (timestamp, freed bytes)}`` of the cleans in *cleaned* that finished without errors.

    A tool is each kind of cache a clean result lists (``conda``, ``mamba``; ``pip``, ``uv``;
    ``rattler``); a result
    that was skipped, failed or is not a clean result counts for nothing."""
    found = {}
    for result in cleaned:
        if not isinstance(result, dict) or result.get("skipped") or result.get("failed") or result.get("errors"):
            continue
        for cache in result.get("caches") or []:
            stamp, freed = found.get(cache["kind"], (now, 0))
            found[cache["kind"]] = (stamp, freed + int(cache.get("freed_bytes") or 0))
    return found


def previous_cleans(text):
    """``{tool: (timestamp, freed bytes)}`` as a file this module wrote says."""
    values = {}
    for line in text.splitlines():
        match = _CARRIED_LINE.match(line)
        if match:
            values.setdefault(match.group(2), {})[match.group(1)] = float(match.group(3))
    return dict((tool, (pair[LAST_CLEAN], pair[LAST_REMOVED])) for tool, pair in values.items()
                if len(pair) == len(CARRIED))


def render(facts, cleaned=(), now=0, previous=""):
    """The file's text: the size gauges from *facts*, the last clean per tool from *cleaned* at
    *now* (Unix seconds), or from *previous* (the file's former text) for a tool not cleaned."""
    samples = cache_samples(facts)
    cleans = previous_cleans(previous)
    cleans.update(last_cleans(cleaned, now))
    for tool, (stamp, freed) in sorted(cleans.items()):
        samples[LAST_CLEAN].append(_sample(LAST_CLEAN, (("tool", tool),), stamp))
        samples[LAST_REMOVED].append(_sample(LAST_REMOVED, (("tool", tool),), freed))
    lines = []
    for name, text in HELP:
        if samples[name]:
            lines.extend(["# HELP %s %s" % (name, text), "# TYPE %s gauge" % name])
            lines.extend(samples[name])
    return "".join(line + "\n" for line in lines)


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except (OSError, IOError):
        return ""


def write_textfile(directory, facts, cleaned=(), now=0, check_mode=False):
    """Replace ``pkgcache.prom`` in *directory* (created if missing) with :func:`render`'s text.

    *facts* holds ``conda_cache``, ``pip_cache`` and/or ``rattler_cache``; *cleaned* the results of real cleans;
    both printable, as modules return them.  Returns ``(path, changed)``; in *check_mode* the
    file is left alone."""
    path = os.path.join(directory, FILENAME)
    before = _read(path)
    text = render(facts, cleaned, now, before)
    changed = text != before
    if changed and not check_mode:
        write_atomic(path, text, keep_existing=False, mode=0o644)
    return path, changed
