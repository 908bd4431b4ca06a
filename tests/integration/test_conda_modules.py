"""conda_cache_facts and conda_clean over SSH, on hosts with every fixture layout.

Expected numbers come from the fixture manifests and from `du` run on each host's tree from the
controller, never from the modules' own code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from condafab.pipcache import snapshot
from factcache import gather_into_cache
from testfleet import layouts
from testfleet.fleet import running

from ansible_collections.pkgcache.fleet.plugins.module_utils import _diskusage

LINK = Path(__file__).resolve().parents[2] / ".build" / "link"


@pytest.fixture(autouse=True)
def collection_path(monkeypatch):
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(LINK))


def manifest(fleet, host):
    path = fleet.manifest_of(host)
    return json.loads(path.read_text()) if path.exists() else None


def du(path: Path) -> int:
    return int(subprocess.check_output(["du", "-s", "--block-size=1", str(path)]).split()[0])


def ok(results, key):
    """Every host answered with the module's own result. (ansible-core 2.19's tree callback
    stores a failed result without its ``failed`` flag, so look for what success returns.)"""
    for host, result in results.items():
        assert key in result and not result.get("unreachable"), (host, result)
    return results


def test_facts_on_every_layout_match_the_fixture_and_du(fleet):
    for host in fleet.hosts:
        built = manifest(fleet, host)
        args = {"environment": built["environment"]} if built else {}
        facts = ok(fleet.run_module(host, "pkgcache.fleet.conda_cache_facts", json.dumps(args), become=True),
                   "ansible_facts")
        conda = facts[host]["ansible_facts"]["conda_cache"]
        if built is None:
            assert conda["installations"] == [] and conda["caches"] == []
            continue
        assert sorted(i["root"] for i in conda["installations"]) == sorted(i["root"] for i in built["installations"])
        caches = dict((c["path"], c) for c in conda["caches"])
        for path, intended in built["caches"].items():
            cache = caches[path]
            assert cache["disk_bytes"] == du(fleet.root_of(host) / path.lstrip("/")), (host, path)
            assert sorted(p["dist"] for p in cache["unused_packages"]) == sorted(intended["orphans"]), (host, path)
        known = sorted(p for p, e in built["envs"].items() if e["known"])
        assert sorted(e["path"] for e in conda["environments"]) == known, host


def test_facts_module_feeds_gather_facts_and_the_fact_cache(fleet, tmp_path):
    """As AWX runs it: FACTS_MODULES makes gather_facts call our module; a jsonfile fact cache
    stores the result per host."""
    stored = gather_into_cache(fleet, "pkgcache.fleet.conda_cache_facts", tmp_path,
                               ["ansible_facts.conda_cache.totals.caches >= 0"])
    for host in fleet.hosts:
        built = manifest(fleet, host)
        roots = sorted(i["root"] for i in stored[host]["conda_cache"]["installations"])
        assert roots == sorted(i["root"] for i in (built["installations"] if built else [])), host


def symlinks_resolve(root: Path, prefix: str):
    broken = []
    for dirpath, _dirs, files in os.walk(root / prefix.lstrip("/")):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink():
                target = os.readlink(path)
                real = root / target.lstrip("/") if target.startswith("/") else path.parent / target
                if not real.exists():
                    broken.append(str(path))
    return broken


def owners(top: Path):
    result = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            st = os.lstat(Path(dirpath) / name)
            result[str(Path(dirpath, name).relative_to(top))] = (st.st_uid, st.st_gid)
    return result


def test_clean_removes_its_plan_and_is_idempotent_without_breaking_envs(tmp_path_factory, fleet_state_factory):
    """A fleet of its own: cleaning changes the hosts the shared fleet's tests read."""
    with running(fleet_state_factory("clean"), 2, ("softlinked_env", "multi_user"), seed=3) as clean_fleet:
        for host in clean_fleet.hosts:
            for partial in (clean_fleet.root_of(host)).glob("**/pkgs/*.partial"):
                os.utime(partial, (1, 1))  # stale downloads: do not let them mark caches busy
        alice_cache = clean_fleet.root_of("h2") / "home/alice/.conda/pkgs"
        alice_before = owners(alice_cache)
        first = ok(clean_fleet.run_module("all", "pkgcache.fleet.conda_clean", "", become=True), "plan")
        planned = {}
        for host in clean_fleet.hosts:
            built = manifest(clean_fleet, host)
            assert first[host]["changed"] is True
            planned[host] = sorted(i["path"] for p in first[host]["plan"] for i in p["remove"])
            assert sorted(first[host]["removed"]) == planned[host], host
            orphans = sorted(c + "/" + d for c, m in built["caches"].items() for d in m["orphans"])
            assert set(orphans) <= set(planned[host]), host
        again = ok(clean_fleet.run_module("all", "pkgcache.fleet.conda_clean", "", become=True), "plan")
        for host in clean_fleet.hosts:
            assert again[host]["changed"] is False, host
            root = clean_fleet.root_of(host)
            assert not [p for p in planned[host] if os.path.lexists(root / p.lstrip("/"))]
            for prefix in manifest(clean_fleet, host)["envs"]:
                assert symlinks_resolve(root, prefix) == [], (host, prefix)
        after = owners(alice_cache)
        assert all(after[k] == alice_before[k] for k in after), "ownership changed in alice's cache"


def test_clean_check_mode_changes_nothing(fleet_state_factory):
    with running(fleet_state_factory("check"), 1, ("single_root",), seed=4) as one:
        root = one.root_of("h1")
        before = sorted(str(p) for p in (root / "opt/conda/pkgs").rglob("*"))
        done = one.ansible("all", "-m", "pkgcache.fleet.conda_clean", "--become", "--check", "--diff")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "would remove" in done.stdout and "--- before: conda caches" in done.stdout
        # Each item with its size and reason: an unused extracted package says why it is unused.
        assert re.search(r"^-/opt/conda/pkgs/\S+  \(\d+(?:\.\d)? (?:B|KiB|MiB|GiB), no environment record names it",
                         done.stdout, re.M), done.stdout
        assert sorted(str(p) for p in (root / "opt/conda/pkgs").rglob("*")) == before


def test_unknown_users_and_fewer_than_one_worker_fail_before_anything_changes(fleet_state_factory):
    """``users: [nosuchuser]`` used to be dropped silently by the conda modules (the clean then ran
    for no user at all) and ``workers: 0`` was accepted; both now fail, naming the value, and
    neither the installation nor the backup directory changes."""
    with running(fleet_state_factory("options"), 1, ("single_root",), seed=4) as one:
        root = one.root_of("h1")
        (root / "srv/backup").mkdir(parents=True)
        before = snapshot(root / "opt/conda"), snapshot(root / "srv/backup")
        unknown = "unknown user(s): nosuchuser (not in the passwd database)"
        for module, args, message in [
                ("conda_clean", {"users": ["nosuchuser"]}, unknown),
                ("conda_cache_facts", {"users": ["nosuchuser"]}, unknown),
                ("conda_pkgs_backup", {"dest": "/srv/backup", "users": ["root", "nosuchuser"]}, unknown),
                ("conda_pkgs_backup", {"dest": "/srv/backup", "workers": 0}, "workers must be 1 or more, not 0")]:
            done = one.ansible("all", "-m", "pkgcache.fleet." + module, "-a", json.dumps(args), "--become")
            assert done.returncode != 0 and message in done.stdout, (module, done.stdout + done.stderr)
        assert (snapshot(root / "opt/conda"), snapshot(root / "srv/backup")) == before


def test_a_cache_big_enough_for_forked_walkers_is_sized_and_cleaned_exactly(fleet_state_factory):
    """Over SSH, as a module really runs: the facts of a cache past the parallel threshold size
    it with forked walkers (whose output must not leak into the module's), and match du and
    the builder; a clean then removes exactly the orphans of every cache and breaks no
    environment."""
    with running(fleet_state_factory("big"), 1, (layouts.BIG_CACHE,), seed=6) as big:
        built = manifest(big, "h1")
        path, intended = next((p, c) for p, c in built["caches"].items() if p == "/opt/conda/pkgs")
        assert len(intended["extracted"]) >= _diskusage.PARALLEL_MIN_TOPS
        root = big.root_of("h1")
        for partial in root.glob("**/pkgs/*.partial"):
            os.utime(partial, (1, 1))  # stale downloads: do not let them mark the cache busy
        facts = ok(big.run_module("h1", "pkgcache.fleet.conda_cache_facts", "", become=True), "ansible_facts")
        cache = next(c for c in facts["h1"]["ansible_facts"]["conda_cache"]["caches"] if c["path"] == path)
        assert cache["disk_bytes"] == du(root / path.lstrip("/"))
        assert cache["categories"]["extracted"]["count"] == len(intended["extracted"])
        assert sorted(p["dist"] for p in cache["unused_packages"]) == sorted(intended["orphans"])
        cleaned = ok(big.run_module("h1", "pkgcache.fleet.conda_clean", json.dumps({"targets": ["packages"]}),
                                    become=True), "plan")["h1"]
        orphans = sorted(c + "/" + d for c, m in built["caches"].items() for d in m["orphans"])
        assert sorted(cleaned["removed"]) == orphans and not any(os.path.lexists(root / p.lstrip("/")) for p in orphans)
        for prefix in built["envs"]:
            assert symlinks_resolve(root, prefix) == [], prefix
