# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostvars as a play leaves them: facts shaped like the facts modules' RETURN, results shaped
like conda_clean's and like Ansible's failed/unreachable results."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def conda_facts(disk, reclaimable, caches=1, warnings=()):
    return {
        "installations": [{"root": "/opt/conda"}],
        "caches": [{"path": "/opt/conda/pkgs", "disk_bytes": disk, "reclaimable_bytes": reclaimable}] * caches,
        "environments": [{"path": "/opt/conda"}],
        "totals": {"installations": 1, "caches": caches, "environments": 1, "apparent_bytes": disk // 2,
                   "disk_bytes": disk, "reclaimable_bytes": reclaimable, "tarballs": 3, "extracted": 4,
                   "unused_packages": 2},
        "warnings": list(warnings),
    }


def pip_facts(disk, reclaimable, paths=("/home/alice/.cache/pip",)):
    part = {"entries": 1, "files": 1, "apparent_bytes": disk, "disk_bytes": disk,
            "reclaimable_bytes": reclaimable, "items": 1}
    return {
        "users": {},
        "caches": dict((path, {"tool": "pip", "users": ["alice"], "usage": part, "sections": {}}) for path in paths),
        "totals": {"pip": part, "uv": dict(part, disk_bytes=0, reclaimable_bytes=0), "all": part},
        "summary": "pip: ...",
    }


def rattler_facts(root, disk, unused, fs):
    """``rattler_cache`` facts (cache_facts' RETURN with gather rattler): one cache root whose
    unused packages hold *unused* bytes; *disk* on disk in all."""
    usage = {"entries": 1, "files": 1, "apparent_bytes": disk, "disk_bytes": disk, "reclaimable_bytes": disk, "items": 1}
    return {
        "users": {}, "environments": [],
        "caches": {root: {"tool": "rattler", "users": ["root"], "usage": usage, "sections": {"pkgs": usage},
                          "filesystem": fs, "packages": None, "in_use": 1, "unused": 1,
                          "unused_reclaimable_bytes": unused, "shared_bytes": 0}},
        "totals": {"rattler": usage}, "summary": "rattler: ...", "search_incomplete": [],
    }


def facts(conda=None, pip=None):
    found = {}
    if conda is not None:
        found["conda_cache"] = conda_facts(*conda)
    if pip is not None:
        found["pip_cache"] = pip_facts(*pip)
    return {"ansible_facts": found}


def clean_result(planned, removed=(), freed=None, skipped=(None,), failed=False, msg="removed"):
    """conda_clean's return: one plan per entry of *skipped* (a reason, or None)."""
    result = {
        "changed": bool(removed),
        "caches": [{"path": "/c%d" % i, "kind": "conda", "skipped": reason, "remove": [], "keep": []}
                   for i, reason in enumerate(skipped)],
        "removed": list(removed),
        "planned_bytes": planned,
        "freed_bytes": dict(freed or {}),
        "msg": msg,
    }
    if failed:
        result["failed"] = True
    return result


def pip_clean_result(planned, removed=(), freed=None, skipped=(None,)):
    """pip_cache_clean's return: the same pipeline shape, pip caches with their users."""
    result = clean_result(planned, removed, freed, skipped, msg="removed pip")
    result["caches"] = [dict(plan, kind="pip", tool="pip", users=["alice"]) for plan in result["caches"]]
    return result


def cleaned(hostvars, before, result, check_mode=False, pip_result=None):
    """*hostvars* after the cache_clean role: snapshot before, registered results, mode."""
    from ansible_collections.pkgcache.fleet.plugins.plugin_utils._report import cache_totals

    hostvars = dict(hostvars)
    hostvars.update(cache_clean_before=cache_totals(before["ansible_facts"]),
                    cache_clean_check_mode=check_mode, cache_clean_conda_result=result)
    if pip_result is not None:
        hostvars["cache_clean_pip_result"] = pip_result
    return hostvars


UNREACHABLE = {"unreachable": True, "changed": False,
               "msg": "Failed to connect to the host via ssh: connect to host 127.0.0.9 port 22: Connection refused"}
FAILED = {"failed": True, "changed": False, "msg": "cache /opt/conda/pkgs is locked"}


GiB = 1 << 30
MiB = 1 << 20


def _cache(path, disk, reclaimable, fs, tool=None):
    cache = {"path": path, "exists": True, "disk_bytes": disk, "reclaimable_bytes": reclaimable, "filesystem": fs}
    if tool:
        cache["tool"] = tool
    return cache


def environments(rng, count, now):
    """``conda_envs`` facts (conda_env_facts' RETURN) with *count* environments, some unhealthy."""
    envs = []
    for index in range(count):
        healthy = rng.random() > 0.1
        problems = {} if healthy else {"missing": rng.randint(1, 9), "altered": rng.randint(0, 3)}
        changed = now - rng.randint(0, 900) * 86400
        envs.append({
            "path": "/opt/conda/envs/env%d" % index, "root": "/opt/conda", "owner": rng.choice(["root", "alice"]),
            "package_count": rng.randint(10, 300), "link_types": {"hardlink": 10},
            "size": {"files": 100, "apparent_bytes": 0, "disk_bytes": rng.randint(1, 40) * (GiB // 8),
                     "exclusive_bytes": rng.randint(0, 8) * (GiB // 16), "shared_bytes": 0},
            "caches": [], "last_change": {"timestamp": changed, "date": "%d" % changed},
            "health": {"healthy": healthy, "problems": problems},
            "orphans": {"checked": True, "packages": ["x-1-0"] * rng.randint(0, 3)},
        })
    return {"mode": "fast", "environments": envs,
            "unhealthy": [env["path"] for env in envs if not env["health"]["healthy"]], "totals": {}, "warnings": [],
            "complete": True, "incomplete_reasons": []}


def synthetic_fleet(count, seed=15, now=1790000000):
    """``[(host, hostvars)]`` and the active hosts of a fleet of *count* hosts shaped like real
    runs: conda, pip, uv and mamba caches of random sizes on filesystems of random fullness,
    some cleaned, some self-cleaning, some with environment facts, ~2% unreachable and ~1% failed."""
    import random

    rng = random.Random(seed)
    views, active = [], []
    for index in range(count):
        name = "host-%04d.example" % index
        roll = rng.random()
        if roll < 0.02:
            views.append((name, {"cache_facts_result": dict(UNREACHABLE, msg=UNREACHABLE["msg"].replace("9", str(index)))}))
            continue
        if roll < 0.03:
            views.append((name, {"cache_facts_result": FAILED}))
            continue
        total = rng.choice([100, 200, 500, 1000]) * GiB
        fs = {"mount": "/", "total_bytes": total, "free_bytes": 0,
              "available_bytes": int(total * rng.uniform(0.01, 0.8))}
        disk = rng.randint(1, 200) * (GiB // 4)
        reclaimable = rng.randint(0, disk)
        conda = conda_facts(disk, reclaimable)
        conda["caches"] = [_cache("/opt/conda/pkgs", disk, reclaimable, fs)]
        if rng.random() < 0.2:
            mamba = rng.randint(1, 20) * (GiB // 4)
            conda["caches"].append(_cache("/root/micromamba/pkgs", mamba, mamba // 2, fs, tool="mamba"))
        pip_disk = rng.randint(0, 40) * (GiB // 16)
        pip = pip_facts(pip_disk, pip_disk // 2)
        if rng.random() < 0.3:
            pip["caches"]["/root/.cache/uv"] = {"tool": "uv", "users": ["root"], "sections": {},
                                                "usage": dict(pip["totals"]["pip"], disk_bytes=GiB, reclaimable_bytes=GiB // 3)}
        found = {"conda_cache": conda, "pip_cache": pip}
        if index % 5 == 0:  # not drawn from rng: the other hosts stay as they were
            found["rattler_cache"] = rattler_facts("/root/.cache/rattler/cache", (index + 1) * (GiB // 8), index * MiB, fs)
        if rng.random() < 0.5:
            found["conda_envs"] = environments(rng, rng.randint(1, 6), now)
        hostvars = {"ansible_facts": found}
        if rng.random() < 0.3:
            before = {"ansible_facts": {"conda_cache": conda_facts(disk + reclaimable, reclaimable)}}
            hostvars = cleaned(hostvars, before, clean_result(reclaimable, removed=["a"], freed={"/": reclaimable}))
        views.append((name, hostvars))
        active.append(name)
    return views, active
