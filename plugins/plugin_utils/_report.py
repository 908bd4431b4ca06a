# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet report model: every host's cache facts and clean results folded into one plain structure.

Pure functions over plain dicts, so the action plugin stays glue and the shape is unit-tested.
The structure is JMESPath-friendly on purpose: ``hosts`` is a list of flat records
(``hosts[?status=='unreachable'].host``, ``max_by(hosts, &reclaimable_bytes).host``) and
``totals`` holds the fleet sums that also go out through ``set_stats``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.pkgcache.fleet.plugins.module_utils.metrics import CACHE_FACTS, cache_entries, cache_sizes

SCHEMA = 2

OK = "ok"
FAILED = "failed"
UNREACHABLE = "unreachable"
NO_DATA = "no_data"
# Facts came back, but some homes or caches could not be read (no become, unreadable files).
INCOMPLETE = "incomplete"
# Facts came back complete and show no conda installation (pip caches, if any, are still counted).
NO_CONDA = "no_conda"
STATUSES = (OK, INCOMPLETE, NO_CONDA, FAILED, UNREACHABLE, NO_DATA)

# Outcome of the clean stage on one host, for the "hosts cleaned/skipped" totals.
CLEANED = "cleaned"
NOTHING = "nothing_to_remove"
SKIPPED = "skipped"

# Variables the collection's roles register or set, read from each host's hostvars.
CLEAN_BEFORE_VAR = "cache_clean_before"
CLEAN_CHECK_MODE_VAR = "cache_clean_check_mode"
# The cache_clean role's options as they were in force on the host (name -> value).
CLEAN_POLICY_VAR = "cache_clean_policy"
# The clean role's results: one per kind, or with a target the one run over every kind.
CLEAN_PARTS = (("conda", "cache_clean_conda_result"), ("pip", "cache_clean_pip_result"),
               ("rattler", "cache_clean_rattler_result"), ("to target", "cache_clean_result"))
CLEAN_RESULT_VARS = tuple(name for _part, name in CLEAN_PARTS)
BACKUP_RESULT_VAR = "pkgs_backup_result"
RESULT_VARS = (
    "cache_facts_result",
    BACKUP_RESULT_VAR,
    "pkgs_relocate_result",
) + CLEAN_RESULT_VARS


# The facts whose totals make a host's ``cache_bytes`` (each counting an inode once): conda's
# (conda and mamba caches), pip's (pip and uv caches) and rattler's.
GATHERED = ("conda", "pip", "rattler")
# The facts listing caches: what the report reads of a host's ``ansible_facts`` besides the
# environments and the self-clean record.
CACHE_FACT_NAMES = tuple(name for name, _tool in CACHE_FACTS)


def _int(value):
    return int(value or 0)


def cache_totals(facts):
    """The numbers a fleet view needs from one host's ``ansible_facts``.

    ``None`` for a tool whose facts were not gathered, so "no conda here" (zeros) and "not
    looked at" (null) stay distinguishable.  ``cache_bytes`` is on-disk bytes (each inode once),
    what ``du`` shows; ``reclaimable_bytes`` is what ``df`` would gain.
    """
    facts = facts or {}
    conda = facts.get("conda_cache")
    pip = facts.get("pip_cache")
    rattler = facts.get("rattler_cache")
    totals = {"conda": None, "pip": None, "rattler": None}
    if conda is not None:
        ctot = conda.get("totals") or {}
        totals["conda"] = {
            "installations": _int(ctot.get("installations")),
            "caches": _int(ctot.get("caches")),
            "environments": _int(ctot.get("environments")),
            "unused_packages": _int(ctot.get("unused_packages")),
            "disk_bytes": _int(ctot.get("disk_bytes")),
            "reclaimable_bytes": _int(ctot.get("reclaimable_bytes")),
            "warnings": len(conda.get("warnings") or []),
        }
    if pip is not None:
        ptot = (pip.get("totals") or {}).get("all") or {}
        totals["pip"] = {
            "caches": len(pip.get("caches") or {}),
            "disk_bytes": _int(ptot.get("disk_bytes")),
            "reclaimable_bytes": _int(ptot.get("reclaimable_bytes")),
        }
    if rattler is not None:
        caches = [cache for _tool, _path, cache in cache_entries({"rattler_cache": rattler})]
        totals["rattler"] = {
            "caches": len(caches),
            "disk_bytes": _int(((rattler.get("totals") or {}).get("rattler") or {}).get("disk_bytes")),
            # What rattler_cache_clean may free: the unused packages (the other kinds stay).
            "reclaimable_bytes": sum(cache_sizes(cache)[1] for cache in caches),
        }
    parts = [totals[part] for part in GATHERED if totals[part] is not None]
    totals["cache_bytes"] = sum(part["disk_bytes"] for part in parts)
    totals["reclaimable_bytes"] = sum(part["reclaimable_bytes"] for part in parts)
    return totals


def gathered(host):
    """Whether any cache facts came back for the host (a report row of :func:`host_record`)."""
    return any(host[part] is not None for part in GATHERED)


def tool_usage(facts):
    """Per tool (conda, mamba, pip, uv, rattler), ``caches``, ``disk_bytes`` and
    ``reclaimable_bytes`` summed over its caches.

    Each cache's own figures: an inode two caches share counts in both, where the host's
    ``cache_bytes`` (the facts' totals) counts it once."""
    usage = {}
    for tool, _path, cache in cache_entries(facts):
        disk, reclaimable, _categories = cache_sizes(cache)
        part = usage.setdefault(tool, {"caches": 0, "disk_bytes": 0, "reclaimable_bytes": 0})
        part["caches"] += 1
        part["disk_bytes"] += disk
        part["reclaimable_bytes"] += reclaimable
    return usage


def filesystems(facts):
    """The filesystems holding the host's caches (each mount once, by mount point), with
    ``available_percent`` of their size; from the caches' ``filesystem`` facts."""
    found = {}
    for _tool, _path, cache in cache_entries(facts):
        fs = cache.get("filesystem")
        if isinstance(fs, dict) and _int(fs.get("total_bytes")) > 0:
            found[fs.get("mount")] = {
                "mount": fs.get("mount"), "total_bytes": _int(fs["total_bytes"]),
                "available_bytes": _int(fs.get("available_bytes")),
                "available_percent": round(100.0 * _int(fs.get("available_bytes")) / _int(fs["total_bytes"]), 1),
            }
    return [found[mount] for mount in sorted(found, key=str)]


def _fullest(filesystems_, threshold=None):
    """The filesystem closest to full by the threshold's measure (share of the size by default)."""
    if not filesystems_:
        return None
    key = "available_bytes" if threshold and threshold[0] == "bytes" else "available_percent"
    return min(filesystems_, key=lambda fs: fs[key])


def is_near_full(fs, threshold):
    """Whether a filesystem has less available than *threshold* (``("percent", 10.0)`` or
    ``("bytes", n)``, as ``options.parse_free_threshold`` reads it)."""
    kind, value = threshold
    return fs["available_percent"] < value if kind == "percent" else fs["available_bytes"] < value


def _time(text):
    try:
        return datetime.datetime.fromisoformat(str(text))
    except ValueError:
        return None


def last_clean(clean, self_clean, generated):
    """The latest clean that removed something or ran to its end on the host: this run's
    (``how: run``) or the host's own scheduled one (``how: scheduled``), or ``None``."""
    found = []
    if clean and not clean["check_mode"] and clean["outcome"] in (CLEANED, NOTHING):
        found.append((generated, "run", clean["reduced_bytes"]))
    if self_clean and not self_clean["check_mode"] and not self_clean["error"] and _time(self_clean["finished"]):
        found.append((self_clean["finished"], "scheduled", self_clean["freed_bytes"]))
    if not found:
        return None
    when, how, freed = max(found, key=lambda item: _time(item[0]).timestamp())
    return {"time": when, "how": how, "freed_bytes": freed}


# conda_env_facts' facts (pkgcache.fleet.conda_env_facts), read when a play gathered them.
ENV_FACT = "conda_envs"


def environment_rows(host, facts):
    """One flat row per environment of the host's ``conda_envs`` facts (empty when not gathered)."""
    rows = []
    for env in ((facts or {}).get(ENV_FACT) or {}).get("environments") or ():
        if not isinstance(env, dict):
            continue
        size = env.get("size") or {}
        health = env.get("health") or {}
        change = env.get("last_change") or {}
        rows.append({
            "host": host, "path": env.get("path"), "owner": env.get("owner"),
            "packages": _int(env.get("package_count")),
            "disk_bytes": _int(size.get("disk_bytes")), "exclusive_bytes": _int(size.get("exclusive_bytes")),
            "healthy": bool(health.get("healthy", True)),
            "problems": dict((kind, n) for kind, n in sorted((health.get("problems") or {}).items()) if n),
            "last_change": change.get("timestamp"), "last_change_date": change.get("date"),
            "orphans": len((env.get("orphans") or {}).get("packages") or ()),
        })
    return rows


def _clean_results(hostvars):
    """``[(part, result)]`` of the clean tasks that ran: conda's, pip's, rattler's, or the one
    run over every kind to a target."""
    return [(part, hostvars[name]) for part, name in CLEAN_PARTS
            if isinstance(hostvars.get(name), dict) and not hostvars[name].get("skipped")]


def clean_summary(hostvars, after):
    """Before/after of the clean stage on one host, or ``None`` when it did not run there.

    *after* is the host's current :func:`cache_totals`; the clean role refreshes facts after a
    real run, so it is the after state.  In check mode nothing changed: ``after_bytes`` is null
    and ``planned_bytes`` is what a real run would free.
    """
    parts = _clean_results(hostvars)
    results = [result for _part, result in parts]
    before = hostvars.get(CLEAN_BEFORE_VAR)
    if not results or not isinstance(before, dict):
        return None
    check_mode = bool(hostvars.get(CLEAN_CHECK_MODE_VAR))
    plans = [plan for result in results for plan in result.get("caches") or []]
    removed = sum(len(result.get("removed") or []) for result in results)
    planned = sum(_int(result.get("planned_bytes")) for result in results)
    if any(result.get("unreachable") for result in results):
        outcome = UNREACHABLE
    elif any(result.get("failed") for result in results):
        outcome = FAILED
    elif plans and all(plan.get("skipped") for plan in plans):
        outcome = SKIPPED
    elif (planned if check_mode else removed):
        outcome = CLEANED
    else:
        outcome = NOTHING
    return {
        "check_mode": check_mode,
        "outcome": outcome,
        "planned_bytes": planned,
        "freed_bytes": sum(_int(v) for result in results for v in (result.get("freed_bytes") or {}).values()),
        "removed": removed,
        "caches_skipped": sum(1 for plan in plans if plan.get("skipped")),
        "before_bytes": _int(before.get("cache_bytes")),
        "after_bytes": None if check_mode else after["cache_bytes"],
        # du-like drop of the caches; freed_bytes is the filesystem's (statvfs) view, which also
        # moves with anything else writing there during the run.
        "reduced_bytes": 0 if check_mode else _int(before.get("cache_bytes")) - after["cache_bytes"],
        "msg": "; ".join("%s: %s" % (part, result["msg"]) for part, result in parts if result.get("msg")),
        "policy": hostvars.get(CLEAN_POLICY_VAR),
    }


def backup_summary(hostvars):
    """What the backup stage stored on one host, or ``None`` when it did not run there."""
    result = hostvars.get(BACKUP_RESULT_VAR)
    if not isinstance(result, dict) or result.get("skipped") or "copied" not in result:
        return None
    return {
        "copied": len(result.get("copied") or []),
        "already_stored": len(result.get("stored") or []),
        "unchanged": _int(result.get("unchanged")),
        "bytes_copied": _int(result.get("bytes_copied")),
        # The module lists the tarballs it refused under ``rejected``; ``failed`` is Ansible's
        # flag on the task (true when fail_on_mismatch failed it).
        "failed": len(result.get("rejected") or []),
        "manifest": result.get("manifest"),
    }


def _error_of(hostvars):
    """(status, message) from the first registered result that failed or was unreachable."""
    for name in RESULT_VARS:
        result = hostvars.get(name)
        if not isinstance(result, dict):
            continue
        if result.get("unreachable"):
            return UNREACHABLE, str(result.get("msg") or "unreachable")
        if result.get("failed"):
            return FAILED, "%s: %s" % (name, result.get("msg") or "failed")
    return None, None


def incomplete_reasons(facts):
    """Why the host's facts do not cover everything (the facts modules' ``incomplete_reasons``)."""
    reasons = []
    for name in CACHE_FACT_NAMES:
        part = (facts or {}).get(name) or {}
        reasons.extend("%s: %s" % (name, reason) for reason in part.get("incomplete_reasons") or ())
    return reasons


# The cache_facts module's record of the host's last scheduled clean (cache_schedule role).
SELF_CLEAN_FACT = "pkgcache_self_clean"


def self_clean_summary(facts):
    """When the host last cleaned itself and what that freed, or ``None`` when it keeps no
    record (it does not clean itself, or its facts were not gathered)."""
    record = (facts or {}).get(SELF_CLEAN_FACT)
    if not isinstance(record, dict):
        return None
    if record.get("error"):
        return {"finished": None, "check_mode": False, "exit_code": None, "planned_bytes": 0, "freed_bytes": 0,
                "removed": 0, "errors": 0, "msg": "", "error": str(record["error"])}
    runs = [part for part in (record.get("runs") or {}).values() if isinstance(part, dict)]
    return {
        "finished": record.get("finished"),
        "check_mode": bool(record.get("check_mode")),
        "exit_code": _int(record.get("exit_code")),
        "planned_bytes": sum(_int(part.get("planned_bytes")) for part in runs),
        "freed_bytes": sum(_int(part.get("freed_bytes")) for part in runs),
        "removed": sum(_int(part.get("removed_count")) for part in runs),
        "errors": sum(_int(part.get("error_count")) for part in runs),
        "msg": "; ".join("%s: %s" % (name, part.get("msg")) for name, part in sorted(
            (record.get("runs") or {}).items()) if isinstance(part, dict) and part.get("exit_code")),
        "error": None,
    }


def host_record(name, hostvars, active):
    """One host's row.  *active*: still in the play (not failed, not unreachable)."""
    facts = hostvars.get("ansible_facts")
    totals = cache_totals(facts)
    status, error = _error_of(hostvars)
    if active:
        # Still in the play: any registered failure was ignored (ignore_errors); a failed clean
        # still shows in ``clean.outcome``.
        status = OK if any(totals[part] is not None for part in GATHERED) else NO_DATA
        reasons = incomplete_reasons(facts)
        if status == OK and reasons:
            status, error = INCOMPLETE, "; ".join(reasons)
        elif status == OK and totals["conda"] is not None and not totals["conda"]["installations"]:
            status = NO_CONDA
    elif status is None:
        status, error = FAILED, "left the play in a task outside the pkgcache.fleet roles; see the job output"
    found = filesystems(facts)
    envs = environment_rows(name, facts)
    return {
        "host": name,
        "status": status,
        "error": error,
        "conda": totals["conda"],
        "pip": totals["pip"],
        "rattler": totals["rattler"],
        "cache_bytes": totals["cache_bytes"],
        "reclaimable_bytes": totals["reclaimable_bytes"],
        "clean": clean_summary(hostvars, totals),
        "backup": backup_summary(hostvars),
        "self_clean": self_clean_summary(facts),
        "tools": tool_usage(facts),
        "filesystems": found,
        # The fullest of them, and whether one is below the near-full threshold (``summarize``).
        "free": _fullest(found),
        "near_full": False,
        # Set by ``build``, which knows the report's time.
        "last_clean": None,
        "environments": None if not envs else {
            "count": len(envs), "unhealthy": sum(1 for env in envs if not env["healthy"]),
            "disk_bytes": sum(env["disk_bytes"] for env in envs), "rows": envs},
        # Since the host's previous report run, from the history (``_history.annotate``).
        "change": None,
    }


def fleet_totals(hosts, check_mode=False):
    """Fleet sums; the ``set_stats`` payload is taken from these (see :func:`stats`).
    *check_mode*: the run was a check run (also when no host cleaned)."""
    counts = dict((status, 0) for status in STATUSES)
    for host in hosts:
        counts[host["status"]] += 1
    cleans = [host["clean"] for host in hosts if host["clean"]]
    backups = [host["backup"] for host in hosts if host["backup"]]
    return {
        "hosts": len(hosts),
        "by_status": counts,
        "cache_bytes": sum(host["cache_bytes"] for host in hosts),
        "reclaimable_bytes": sum(host["reclaimable_bytes"] for host in hosts),
        "conda_bytes": sum((host["conda"] or {}).get("disk_bytes", 0) for host in hosts),
        "pip_bytes": sum((host["pip"] or {}).get("disk_bytes", 0) for host in hosts),
        "planned_bytes": sum(clean["planned_bytes"] for clean in cleans),
        "freed_bytes": sum(clean["freed_bytes"] for clean in cleans),
        "reduced_bytes": sum(clean["reduced_bytes"] for clean in cleans),
        "hosts_cleaned": sum(1 for clean in cleans if clean["outcome"] == CLEANED),
        # Hosts with nothing to remove count as skipped here (the set_stats value); the summary
        # tells them apart.
        "hosts_skipped": sum(1 for clean in cleans if clean["outcome"] in (SKIPPED, NOTHING)),
        "hosts_nothing_to_remove": sum(1 for clean in cleans if clean["outcome"] == NOTHING),
        "hosts_failed": counts[FAILED] + counts[UNREACHABLE],
        "hosts_backed_up": len(backups),
        "backup_bytes_copied": sum(backup["bytes_copied"] for backup in backups),
        "check_mode": bool(check_mode) or any(clean["check_mode"] for clean in cleans),
        "hosts_self_cleaning": sum(1 for host in hosts if host.get("self_clean")),
        "self_clean_freed_bytes": sum((host.get("self_clean") or {}).get("freed_bytes", 0) for host in hosts),
        "tools": tools_totals(hosts),
    }


def tools_totals(hosts):
    """Per tool over the fleet: ``hosts`` having its caches, ``caches``, ``disk_bytes``, ``reclaimable_bytes``."""
    found = {}
    for host in hosts:
        for tool, part in host["tools"].items():
            total = found.setdefault(tool, {"hosts": 0, "caches": 0, "disk_bytes": 0, "reclaimable_bytes": 0})
            total["hosts"] += 1
            for key in ("caches", "disk_bytes", "reclaimable_bytes"):
                total[key] += part[key]
    return dict((tool, found[tool]) for tool in sorted(found))


def policies(hosts):
    """Each distinct clean policy in force, with the hosts it applied to, in host order: one
    entry when the run had one policy, more when inventory variables gave hosts their own."""
    found = []
    for host in hosts:
        policy = (host["clean"] or {}).get("policy")
        if policy is None:
            continue
        for entry in found:
            if entry["policy"] == policy:
                entry["hosts"].append(host["host"])
                break
        else:
            found.append({"policy": policy, "hosts": [host["host"]]})
    return found


# Below this much available space a filesystem holding a cache is near full; hosts listed in
# the summary's top lists.  The action's defaults, options there.
NEAR_FULL = ("percent", 10.0)
TOP = 10


def build(hostvars_by_host, active_hosts, title, now=None, check_mode=False):
    """The whole report for the hosts in *hostvars_by_host* (the play's hosts, in order), its
    summary with the default threshold and length (see :func:`summarize`).
    *check_mode*: the run was a check run."""
    active = set(active_hosts)
    hosts = [host_record(name, hostvars, name in active) for name, hostvars in hostvars_by_host]
    now = now or datetime.datetime.now(datetime.timezone.utc)
    generated = now.replace(microsecond=0).isoformat()
    for host in hosts:
        host["last_clean"] = last_clean(host["clean"], host["self_clean"], generated)
    return summarize({
        "schema": SCHEMA,
        "title": title,
        "generated": generated,
        "totals": fleet_totals(hosts, check_mode),
        "policies": policies(hosts),
        "hosts": hosts,
        # The fleet's change since the previous run, over the hosts the history knows (``_history``).
        "change": None,
        # Fleet totals per earlier run and this one, from the history (``_history``).
        "trend": [],
        # What needs attention first (``summarize``; again once the history set the changes).
        "summary": None,
    }, NEAR_FULL, TOP)


def _top(hosts, value, count):
    """The *count* hosts with the largest positive *value*, largest first, ties by name."""
    ranked = sorted(((value(host), host["host"]) for host in hosts if value(host) and value(host) > 0),
                    key=lambda item: (-item[0], item[1]))
    return [{"host": name, "bytes": amount} for amount, name in ranked[:count]]


def summarize(report, near_full, top):
    """Mark hosts with a filesystem below *near_full* (a threshold as
    ``options.parse_free_threshold`` reads it) and set ``report["summary"]``: those hosts, the
    top *top* hosts by reclaimable bytes, by cache size and by growth since the last run, and the
    environments view.  Run after ``_history`` has set the changes."""
    hosts = report["hosts"]
    short = []
    for host in hosts:
        low = [fs for fs in host["filesystems"] if is_near_full(fs, near_full)]
        host["near_full"] = bool(low)
        host["free"] = _fullest(host["filesystems"], near_full)
        if low:
            short.append(host)
    key = "available_bytes" if near_full[0] == "bytes" else "available_percent"
    short.sort(key=lambda host: (host["free"][key], host["host"]))
    report["summary"] = {
        "near_full": {"threshold": list(near_full), "hosts": [
            dict(host["free"], host=host["host"]) for host in short]},
        "top": top,
        "top_reclaimable": _top(hosts, lambda host: host["reclaimable_bytes"], top),
        "top_cache": _top(hosts, lambda host: host["cache_bytes"], top),
        "top_growth": _top(hosts, lambda host: (host["change"] or {}).get("cache_bytes"), top),
        "environments": environments_view(hosts, top),
    }
    return report


def environments_view(hosts, top):
    """Unhealthy environments first (all of them), then the *top* largest and the *top* longest
    unchanged; ``None`` when no host's environment facts were gathered."""
    rows = [env for host in hosts for env in (host["environments"] or {}).get("rows", ())]
    if not any(host["environments"] for host in hosts):
        return None
    return {
        "hosts": sum(1 for host in hosts if host["environments"]),
        "count": len(rows),
        "disk_bytes": sum(env["disk_bytes"] for env in rows),
        "unhealthy": sorted((env for env in rows if not env["healthy"]),
                            key=lambda env: (-sum(env["problems"].values()), env["host"], str(env["path"]))),
        "largest": sorted(rows, key=lambda env: (-env["disk_bytes"], env["host"], str(env["path"])))[:top],
        "unchanged": sorted((env for env in rows if env["last_change"] is not None),
                            key=lambda env: (env["last_change"], env["host"], str(env["path"])))[:top],
    }


def stats(report):
    """``set_stats`` data: flat, numeric, prefixed, so ``aggregate: true`` sums them per job."""
    totals = report["totals"]
    keys = ("cache_bytes", "reclaimable_bytes", "planned_bytes", "freed_bytes", "reduced_bytes",
            "hosts_cleaned", "hosts_skipped", "hosts_failed", "hosts_backed_up", "backup_bytes_copied")
    data = dict(("pkgcache_" + key, totals[key]) for key in keys)
    data["pkgcache_hosts"] = totals["hosts"]
    # A check job's "hosts cleaned" are hosts that would be cleaned.
    data["pkgcache_check_mode"] = totals["check_mode"]
    return data
