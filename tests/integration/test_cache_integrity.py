"""Cache integrity over SSH with become: the audit (cache_facts gather=integrity) finds nothing on a
sound host, then exactly the damage done; conda_cache_repair in check mode changes nothing, then
re-extracts the .tar.bz2 package from its verified tarball and quarantines the package whose
record mamba-style zeroing made unverifiable; the audit is clean again; a clean with
verify_environments checks the environments it touched and passes.

The host is this test's own (it damages it).
"""

from __future__ import annotations

import json
import os

import pytest

from decoys import checksums
from testfleet.fleet import running

from test_conda_env_facts import LINK
from test_conda_pkgs_dirs import call

CACHE = "opt/conda/pkgs"


@pytest.fixture(autouse=True)
def collection_path(monkeypatch):
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(LINK))


def audit(fleet, host, mode):
    result = fleet.run_module(host, "pkgcache.fleet.cache_facts",
                              json.dumps({"gather": ["integrity"], "integrity_mode": mode}), become=True)[host]
    assert result.get("changed") is False, result
    return result["ansible_facts"]["conda_cache_integrity"]


def run(fleet, host, module, **args):
    result = fleet.run_module(host, module, json.dumps(args), become=True)[host]
    assert not result.get("failed"), result
    return result


def packages_with_tarballs(root):
    """``{dist: tarball file name}`` of the extracted packages whose tarball is in the cache."""
    names = set(os.listdir(root / CACHE))
    found = {}
    for name in names:
        for ext in (".conda", ".tar.bz2"):
            if name.endswith(ext) and name[: -len(ext)] in names:
                found[name[: -len(ext)]] = name
    return found


def truncate_first_file(root, dist):
    paths = json.loads((root / CACHE / dist / "info/paths.json").read_text())["paths"]
    victim = root / CACHE / dist / paths[0]["_path"]
    fresh = victim.with_name(victim.name + ".new")  # a new inode: the environments keep theirs
    fresh.write_bytes(victim.read_bytes()[:1])
    os.rename(fresh, victim)
    return paths[0]


def test_audit_then_quarantine_and_repair_then_a_verified_clean(fleet_state_factory, tmp_path):
    with running(fleet_state_factory("integrity"), 1, ("single_root",)) as fleet:
        [host] = fleet.hosts
        root = fleet.root_of(host)
        before = checksums(root / "opt/conda")
        for mode in ("fast", "full"):
            found = audit(fleet, host, mode)
            assert found["sound"] and found["complete"] and found["findings"] == [], found
            assert found["totals"]["packages"] > 0 and found["totals"]["tarballs"] > 0
        assert checksums(root / "opt/conda") == before, "an audit changed the host"

        pairs = packages_with_tarballs(root)
        with_paths = [d for d in sorted(pairs) if json.loads((root / CACHE / d / "info/paths.json").read_text())["paths"]]
        bz2 = next(d for d in with_paths if pairs[d].endswith(".tar.bz2"))
        zeroed = next(d for d in sorted(pairs) if pairs[d].endswith(".conda"))
        entry = truncate_first_file(root, bz2)
        record = root / CACHE / zeroed / "info/repodata_record.json"
        record.write_bytes(bytes(record.stat().st_size))

        found = audit(fleet, host, "fast")
        assert found["damaged"] == sorted(["/%s/%s" % (CACHE, bz2), "/%s/%s" % (CACHE, zeroed)])
        by_entry = {f["entry"]: f for f in found["findings"]}
        assert len(found["findings"]) == 2
        assert by_entry["/%s/%s" % (CACHE, bz2)]["what"] == "size"
        assert by_entry["/%s/%s" % (CACHE, bz2)]["expected"] == entry["size_in_bytes"]
        assert by_entry["/%s/%s" % (CACHE, bz2)]["found"] == 1
        assert by_entry["/%s/%s" % (CACHE, zeroed)]["what"] == "zeroed"

        damaged = checksums(root / "opt/conda")
        preview = call(fleet, host, {"mode": "full"}, tmp_path, check=True, module="pkgcache.fleet.conda_cache_repair")
        assert preview["changed"] is True and not preview["failed"] and checksums(root / "opt/conda") == damaged
        assert preview["diff"]["before"].splitlines() == sorted([
            "/%s/%s  (damaged: size)" % (CACHE, bz2), "/%s/%s  (damaged: zeroed)" % (CACHE, zeroed)])
        actions = {s["dist"]: s["action"] for c in preview["caches"] for s in c["steps"]}
        assert actions == {bz2: "repair", zeroed: "quarantine"}

        done = run(fleet, host, "pkgcache.fleet.conda_cache_repair", mode="full")
        assert done["changed"] is True and done["re_extracted"] == ["/%s/%s" % (CACHE, bz2)]
        moved = sorted(os.path.basename(p) for p in done["quarantined"])
        assert moved == sorted([bz2, zeroed])
        assert all(os.path.isdir(str(root) + p) for p in done["quarantined"])
        assert (root / CACHE / pairs[zeroed]).is_file() and not (root / CACHE / zeroed).exists()
        assert audit(fleet, host, "full")["sound"]
        assert run(fleet, host, "pkgcache.fleet.conda_cache_repair", mode="full")["changed"] is False

        clean = run(fleet, host, "pkgcache.fleet.conda_clean", targets=["packages", "tarballs"],
                    verify_environments=True)
        verified = clean["verified_environments"]
        assert clean["changed"] and verified["checked"] and verified["environments"] and verified["broken"] == []


def test_a_clean_that_breaks_an_environment_fails_the_task_naming_it(fleet_state_factory, tmp_path):
    with running(fleet_state_factory("integrity-broken"), 1, ("softlinked_env",)) as fleet:
        [host] = fleet.hosts
        root = fleet.root_of(host)
        linked = root / "opt/conda/envs/linked/conda-meta"
        elsewhere = set(os.listdir(root / "opt/conda/envs/hard/conda-meta")) | set(os.listdir(root / "opt/conda/conda-meta"))
        only_linked = sorted({n for n in os.listdir(linked) if n.endswith(".json")} - elsewhere)
        name = next(n for n in only_linked if json.loads((linked / n).read_text())["files"])
        # The record renamed, no longer saying where it was linked from (nor which tarball it came
        # from, which pins the package too), and the history agreeing: the environment is whole,
        # but nothing tells a clean it uses the package.
        record = json.loads((linked / name).read_text())
        record.pop("extracted_package_dir", None)
        record["link"].pop("source", None)
        record.pop("package_tarball_full_path", None)
        (linked / name).unlink()
        (linked / "renamed-1.0-0.json").write_text(json.dumps(record))
        history = linked / "history"
        history.write_text(history.read_text().replace("::" + name[:-5] + "\n", "::renamed-1.0-0\n"))

        result = call(fleet, host, {"targets": ["packages"], "verify_environments": True}, tmp_path,
                      module="pkgcache.fleet.conda_clean")
        assert result["failed"] is True, result
        assert result["msg"].startswith(
            "environment(s) no longer whole after the clean: /opt/conda/envs/linked (%d dangling) (removed " % (
                len(record["files"])))
        assert "/%s/%s" % (CACHE, name[:-5]) in result["removed"]
        [broken] = result["verified_environments"]["broken"]
        assert broken["path"] == "/opt/conda/envs/linked"
