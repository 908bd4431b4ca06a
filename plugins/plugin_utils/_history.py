# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Report history: each report run appends one JSON Lines record per host next to the report,
and the report carries each host's change since that host's previous record.

A record is ``{"run", "time", "host", "status", "cache_bytes", "reclaimable_bytes"}`` (the sizes
null when the run had no facts from the host).  The file keeps the records of the last ``keep``
runs.  Writers lock the file (``flock``) for the whole read-compare-append, so two report jobs
finishing together (AWX slices, a scheduled job and a manual one) each see the other's records
whole; a retention pass replaces the file atomically under the same lock, and a writer that was
waiting on the replaced file notices and locks the new one.  A line that does not parse (a
crashed writer's half line, a hand edit) is skipped with a warning naming its line number.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os
import uuid
from contextlib import contextmanager

from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import write_all, write_atomic
from ansible_collections.pkgcache.fleet.plugins.plugin_utils._report import gathered

SUFFIX = "-history.jsonl"
FIELDS = ("run", "time", "host", "status", "cache_bytes", "reclaimable_bytes")
COMPARED = ("cache_bytes", "reclaimable_bytes")


def path_for(directory, basename):
    return os.path.join(directory, basename + SUFFIX)


def records(report, run):
    """The report's per-host records for run id *run*."""
    return [{"run": run, "time": report["generated"], "host": host["host"], "status": host["status"],
             "cache_bytes": host["cache_bytes"] if gathered(host) else None,
             "reclaimable_bytes": host["reclaimable_bytes"] if gathered(host) else None}
            for host in report["hosts"]]


def parse(text, name, warn):
    """The valid records of a history file's *text*, in file order; every other line is skipped
    with a warning (*name* is the file's name for it)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or not isinstance(record.get("run"), str) or \
                not isinstance(record.get("host"), str) or \
                not all(record.get(key) is None or isinstance(record.get(key), int) for key in COMPARED):
            warn("%s line %d is not a history record; skipped" % (name, number))
            continue
        found.append(record)
    return found


def annotate(report, history):
    """Set each host's ``change`` since its latest record with sizes in *history* (null when it
    has none, or no sizes now), and ``report["change"]``, the fleet's sum over those hosts."""
    latest = {}
    for record in history:
        if record["cache_bytes"] is not None:
            latest[record["host"]] = record
    compared = []
    for host in report["hosts"]:
        before = latest.get(host["host"])
        host["change"] = None
        if before is not None and gathered(host):
            host["change"] = dict((key, host[key] - before[key]) for key in COMPARED if before.get(key) is not None)
            host["change"]["since"] = before.get("time")
            compared.append(host["change"])
    report["change"] = None if not compared else dict(
        [("hosts", len(compared))] + [(key, sum(change.get(key, 0) for change in compared)) for key in COMPARED])
    return report


def trend(history):
    """Fleet totals per run, oldest first: ``run``, ``time``, ``hosts`` (with sizes),
    ``cache_bytes`` and ``reclaimable_bytes`` summed over them (a chart's points)."""
    runs = {}
    for record in history:
        point = runs.setdefault(record["run"], {"run": record["run"], "time": record.get("time"), "hosts": 0,
                                                "cache_bytes": 0, "reclaimable_bytes": 0})
        if record.get("cache_bytes") is not None:
            point["hosts"] += 1
            for key in COMPARED:
                point[key] += record.get(key) or 0
    return list(runs.values())


def _lines(items):
    return "".join(json.dumps(dict((key, item.get(key)) for key in FIELDS), sort_keys=True) + "\n"
                   for item in items)


@contextmanager
def locked(path):
    """An fd of *path* (created if missing) opened for appending, under an exclusive ``flock``,
    and the file itself: if a retention pass replaced the file while we waited, lock the new one."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except OSError:
                current = None
            if current is not None and (current.st_dev, current.st_ino) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                yield fd
                return
        finally:
            os.close(fd)


def _read(fd):
    chunks = []
    os.lseek(fd, 0, os.SEEK_SET)
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def update(path, report, keep, warn, append=True):
    """Annotate *report* with the changes since the history in *path* and the fleet's trend
    (this run its last point), then (with *append*) add its records, keeping the last *keep*
    runs.  Returns the report."""
    with locked(path) as fd:
        data = _read(fd)
        history = parse(data.decode("utf-8", "replace"), os.path.basename(path), warn)
        annotate(report, history)
        new = records(report, uuid.uuid4().hex)
        report["trend"] = trend(history + new)
        if not append:
            return report
        runs = []
        for record in history:
            if record["run"] not in runs:
                runs.append(record["run"])
        if len(runs) + 1 > keep:
            kept = set(runs[len(runs) + 1 - keep:])
            write_atomic(path, _lines([r for r in history if r["run"] in kept] + new))
        else:
            # One write on an O_APPEND fd; after a crashed writer's half line, start a new one.
            prefix = "\n" if data and not data.endswith(b"\n") else ""
            write_all(fd, memoryview((prefix + _lines(new)).encode("utf-8")))
            os.fsync(fd)
    return report
