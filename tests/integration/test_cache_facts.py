"""cache_facts over SSH: one module run returns what conda_cache_facts and pip_cache_facts return
on the same host, on every fixture layout, and ``gather`` limits which facts come back.

The single modules are the reference here; their own tests judge them against the fixture
manifests and ``du``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factcache import gather_into_cache

LINK = Path(__file__).resolve().parents[2] / ".build" / "link"
MODULE = "pkgcache.fleet.cache_facts"
# Measured afresh by every run: the seconds since a cached item's mtime, and the free space of
# the filesystem under a cache (Ansible itself writes to the host between two runs).
VOLATILE = {"oldest_age_seconds", "newest_age_seconds", "free_bytes", "available_bytes"}


@pytest.fixture(autouse=True)
def collection_path(monkeypatch):
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(LINK))


def stable(value):
    """*value* without the fields that change from one run to the next."""
    if isinstance(value, dict):
        return {key: stable(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list):
        return [stable(item) for item in value]
    return value


def host_args(fleet):
    """``{module args as JSON: [hosts]}``: the environment each host's fixture was built for."""
    groups = {}
    for host in fleet.hosts:
        path = fleet.manifest_of(host)
        environment = json.loads(path.read_text())["environment"] if path.exists() else {}
        groups.setdefault(json.dumps({"environment": environment}, sort_keys=True), []).append(host)
    return groups


def facts_by_host(fleet, module, extra=None):
    """``{host: ansible_facts}`` of one module on every host, each with its fixture's environment."""
    facts = {}
    for args, hosts in host_args(fleet).items():
        args = dict(json.loads(args), **(extra or {}))
        results = fleet.run_module(":".join(hosts), module, json.dumps(args), become=True)
        for host, result in results.items():
            # ansible-core 2.19's tree callback drops ``failed`` from a failed result: look for success.
            assert "ansible_facts" in result and not result.get("unreachable"), (host, result)
            facts[host] = result["ansible_facts"]
    assert sorted(facts) == sorted(fleet.hosts)
    return facts


def test_one_run_returns_both_facts_as_the_single_modules_do(fleet):
    both = facts_by_host(fleet, MODULE)
    conda = facts_by_host(fleet, "pkgcache.fleet.conda_cache_facts")
    pip = facts_by_host(fleet, "pkgcache.fleet.pip_cache_facts")
    for host in fleet.hosts:
        assert sorted(both[host]) == ["conda_cache", "pip_cache"], host
        assert stable(both[host]["conda_cache"]) == stable(conda[host]["conda_cache"]), host
        assert stable(both[host]["pip_cache"]) == stable(pip[host]["pip_cache"]), host
    # Equal and empty would prove nothing: the layouts put conda caches and several users' pip
    # caches on the hosts.
    assert all(both[host]["conda_cache"]["caches"] for host in fleet.hosts)
    assert sum(len(both[host]["pip_cache"]["caches"]) for host in fleet.hosts) >= 3


def test_gather_pip_returns_only_pip_cache(fleet):
    only = facts_by_host(fleet, MODULE, {"gather": ["pip"]})
    pip = facts_by_host(fleet, "pkgcache.fleet.pip_cache_facts")
    for host in fleet.hosts:
        assert sorted(only[host]) == ["pip_cache"], host
        assert stable(only[host]["pip_cache"]) == stable(pip[host]["pip_cache"]), host


def test_gather_conda_with_options_returns_only_conda_cache(fleet):
    options = {"gather": ["conda"], "env_sizes": True, "list_packages": False}
    only = facts_by_host(fleet, MODULE, options)
    conda = facts_by_host(fleet, "pkgcache.fleet.conda_cache_facts", {"env_sizes": True, "list_packages": False})
    for host in fleet.hosts:
        assert sorted(only[host]) == ["conda_cache"], host
        assert stable(only[host]["conda_cache"]) == stable(conda[host]["conda_cache"]), host
        assert all("size" in env for env in only[host]["conda_cache"]["environments"]), host
        assert not any("unused_packages" in cache for cache in only[host]["conda_cache"]["caches"]), host


def printed_by(fleet, host, args):
    """What Ansible prints for one ad hoc run, whitespace folded (warnings are printed, not returned)."""
    done = fleet.ansible(host, "-m", MODULE, "--become", "-a", json.dumps(args))
    return done.returncode, " ".join((done.stdout + done.stderr).split())


def test_named_users_limit_both_facts_and_an_unknown_name_is_an_error(fleet):
    host = next(h for h in fleet.hosts if fleet.manifest_of(h).exists()
                and "alice" in json.loads(fleet.manifest_of(h).read_text())["users"])
    facts = fleet.run_module(host, MODULE, json.dumps({"users": ["alice"]}), become=True)[host]["ansible_facts"]
    assert sorted(facts["pip_cache"]["users"]) == ["alice"]
    homes = {user for inst in facts["conda_cache"]["installations"] for user in inst["configs"]}
    assert homes == {"alice"}, homes
    rc, printed = printed_by(fleet, host, {"users": ["alice", "nobody-by-that-name"]})
    assert rc != 0 and "unknown user(s): nobody-by-that-name (not in the passwd database)" in printed, printed


def test_empty_gather_fails_and_says_why(fleet):
    rc, printed = printed_by(fleet, fleet.hosts[0], {"gather": []})
    assert rc != 0 and "gather is empty" in printed, printed


def test_facts_module_feeds_gather_facts_with_both_facts(fleet, tmp_path):
    """As AWX runs it: FACTS_MODULES makes gather_facts call the module; the jsonfile fact cache
    stores both facts per host."""
    stored = gather_into_cache(fleet, MODULE, tmp_path, ["ansible_facts.conda_cache.totals.caches >= 0",
                                                         "ansible_facts.pip_cache.summary | length > 0"])
    for host in fleet.hosts:
        assert "conda_cache" in stored[host] and "pip_cache" in stored[host], host
