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
