# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The record a host keeps of its last scheduled clean (the ``cache_schedule`` role's timer or
cron entry runs ``pkgcache run --record``), and the fact the facts modules return from it, so the
fleet report shows when each host last cleaned itself and what that freed.

The record is one JSON file, written atomically: ``finished`` (UTC, ISO 8601), ``exit_code``
(the command's), ``check_mode``, and per command (``clean``, ``clean-pip``, ``clean-rattler``) its
``exit_code``, ``msg``, ``planned_bytes``, ``freed_bytes`` (the filesystems' gain, summed),
``removed`` (the paths), ``removed_count``, ``errors`` (the first few) and ``error_count``.  The fact is the same
without the path lists, plus a one-line ``summary``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json

from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import write_atomic
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes

RECORD_PATH = "/var/lib/pkgcache/last-run.json"
FACT_NAME = "pkgcache_self_clean"
SCHEMA = 1
# A failing run can list thousands of errors; the journal or log file has them all.
ERRORS_KEPT = 20
# A record larger than this is not one the command wrote; the facts say so instead of loading it.
MAX_RECORD_BYTES = 64 * 1024 * 1024


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def command_record(result, code):
    """One command's part of the record, from its result (``None`` when it was refused before
    producing one: then *result* is ``{"msg": why}``)."""
    errors = [str(error) for error in result.get("errors") or []]
    freed = result.get("freed_bytes") or {}
    return {
        "exit_code": code,
        "msg": str(result.get("msg") or ""),
        "planned_bytes": int(result.get("planned_bytes") or 0),
        "freed_bytes": sum(int(value or 0) for value in freed.values()) if isinstance(freed, dict) else int(freed),
        "removed": [str(path) for path in result.get("removed") or []],
        "removed_count": len(result.get("removed") or []),
        "errors": errors[:ERRORS_KEPT],
        "error_count": len(errors),
    }


def build(runs, check_mode, now=None):
    """The whole record: *runs* is ``{command: command_record(...)}``."""
    return {
        "schema": SCHEMA,
        "finished": (now or _now()).isoformat(),
        "check_mode": bool(check_mode),
        "exit_code": max([part["exit_code"] for part in runs.values()] or [0]),
        "runs": runs,
    }


def write(path, record):
    """Replace the record at *path* (its directory is created); readers never see half of it."""
    write_atomic(path, json.dumps(record, sort_keys=True, indent=1) + "\n", mode=0o644, keep_existing=False)


def summary_line(fact):
    """How a person reads the last self-clean: when, what it freed, and what went wrong."""
    if fact.get("error"):
        return "unreadable record: %s" % fact["error"]
    runs = fact.get("runs") or {}
    removed = sum(part.get("removed_count", 0) for part in runs.values())
    freed = sum(part.get("freed_bytes", 0) for part in runs.values())
    planned = sum(part.get("planned_bytes", 0) for part in runs.values())
    when = str(fact.get("finished", "?"))
    if fact.get("check_mode"):
        text = "%s (check run): would free %s, %d path(s)" % (when, human_bytes(planned), removed)
    else:
        text = "%s: freed %s, removed %d path(s)" % (when, human_bytes(freed), removed)
    problems = ["%s: %s" % (name, part.get("msg")) for name, part in sorted(runs.items()) if part.get("exit_code")]
    return text + ("; " + "; ".join(problems) if problems else "")


def read_fact(path=RECORD_PATH):
    """The fact from the record at *path*: ``None`` when there is none (the host does not clean
    itself), ``{"error": why}`` when it cannot be read or is not a record."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_RECORD_BYTES + 1)
    except (IOError, OSError) as exc:
        if getattr(exc, "errno", None) == 2:
            return None
        fact = {"path": path, "error": "%s: %s" % (path, exc.strerror or exc)}
        fact["summary"] = summary_line(fact)
        return fact
    try:
        if len(data) > MAX_RECORD_BYTES:
            raise ValueError("larger than %d bytes" % MAX_RECORD_BYTES)
        record = json.loads(data.decode("utf-8"))
        if not isinstance(record, dict) or not isinstance(record.get("runs"), dict):
            raise ValueError("not a pkgcache run record")
        fact = {
            "path": path,
            "finished": str(record.get("finished", "")),
            "check_mode": bool(record.get("check_mode")),
            "exit_code": int(record.get("exit_code") or 0),
            "runs": dict((str(name), dict((key, value) for key, value in part.items() if key != "removed"))
                         for name, part in record["runs"].items() if isinstance(part, dict)),
        }
    except (ValueError, TypeError, AttributeError) as exc:
        fact = {"path": path, "error": "%s: %s" % (path, exc)}
    fact["summary"] = summary_line(fact)
    return fact
