"""conda_env_facts over SSH with become: the fixture hosts' environments (hard-linked, copied and
soft-linked) are healthy, damage done to them is reported exactly where it was done, in the mode
that can see it, and the run changes nothing on the host.

The hosts are this test's own (it damages them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from decoys import checksums
from testfleet.fleet import running

LINK = Path(__file__).resolve().parents[2] / ".build" / "link"
MODULE = "pkgcache.fleet.conda_env_facts"


@pytest.fixture(autouse=True)
def collection_path(monkeypatch):
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(LINK))


def facts(fleet, host, **args):
    result = fleet.run_module(host, MODULE, json.dumps(args) if args else "", become=True)[host]
    assert "ansible_facts" in result and result.get("changed") is False, result
    return result["ansible_facts"]["conda_envs"]


def first_file(root, prefix, skip=()):
    """``(dist, relative path)``: the first payload file of the first record of ``prefix`` with
    files, among packages not in ``skip``."""
    meta = root / prefix.lstrip("/") / "conda-meta"
    for name in sorted(os.listdir(meta)):
        if name.endswith(".json") and name[:-5] not in skip:
            files = json.loads((meta / name).read_text())["files"]
            if files:
                return name[:-5], sorted(files)[0]
    raise AssertionError("no file in %s" % prefix)


def dists(root, prefix):
    return {n[:-5] for n in os.listdir(root / prefix.lstrip("/") / "conda-meta") if n.endswith(".json")}


def problems_by_env(found):
    return {e["path"]: {k: v for k, v in e["health"]["problems"].items() if v} for e in found["environments"]}


def test_healthy_hosts_then_each_damage_reported_exactly(fleet_state_factory):
    with running(fleet_state_factory("envfacts"), 2, ("single_root", "softlinked_env")) as fleet:
        single, soft = fleet.hosts
        for host in fleet.hosts:
            before = checksums(fleet.root_of(host) / "opt/conda")
            for mode in ("fast", "full"):
                found = facts(fleet, host, mode=mode)
                assert found["complete"] and found["incomplete_reasons"] == [] and found["warnings"] == [], found
                assert found["unhealthy"] == [] and len(found["environments"]) >= 3, host
                assert all(e["health"]["checked_files"] > 0 for e in found["environments"])
                assert all(e["orphans"]["checked"] and e["orphans"]["requested"] for e in found["environments"])
            assert checksums(fleet.root_of(host) / "opt/conda") == before, "a facts run changed the host"
        kinds = {t for host in fleet.hosts for e in facts(fleet, host)["environments"] for t in e["link_types"]}
        assert kinds == {"hardlink", "copy", "softlink"}

        # single_root: a deleted file in a hard-linked env, a truncated file in the copied one,
        # a file of the same size with other bytes in another hard-linked env.
        root = fleet.root_of(single)
        others = dists(root, "/opt/conda") | dists(root, "/opt/conda/envs/ml")
        deleted = first_file(root, "/opt/conda/envs/web", skip=others)
        (root / "opt/conda/envs/web" / deleted[1]).unlink()
        truncated = first_file(root, "/opt/conda/envs/tools")
        real = root / "opt/conda/envs/tools" / truncated[1]
        size = real.stat().st_size
        os.truncate(real, size - 1)
        altered = first_file(root, "/opt/conda/envs/ml")
        real = root / "opt/conda/envs/ml" / altered[1]
        data = real.read_bytes()
        real.unlink()  # a new inode: the cache and the other environments keep theirs
        real.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))

        fast = facts(fleet, single)
        assert problems_by_env(fast) == {"/opt/conda": {}, "/opt/conda/envs/web": {"missing": 1},
                                         "/opt/conda/envs/ml": {}, "/opt/conda/envs/tools": {"altered": 1}}
        by_path = {e["path"]: e["health"] for e in fast["environments"]}
        assert by_path["/opt/conda/envs/web"]["missing"] == [{"package": deleted[0], "path": deleted[1]}]
        assert by_path["/opt/conda/envs/tools"]["altered"] == [
            {"package": truncated[0], "path": truncated[1], "reason": "size %d, recorded %d" % (size - 1, size)}]
        full = facts(fleet, single, mode="full")
        assert problems_by_env(full)["/opt/conda/envs/ml"] == {"altered": 1}
        assert {e["path"]: e["health"] for e in full["environments"]}["/opt/conda/envs/ml"]["altered"] == [
            {"package": altered[0], "path": altered[1], "reason": "sha256 differs"}]
        assert sorted(full["unhealthy"]) == ["/opt/conda/envs/ml", "/opt/conda/envs/tools", "/opt/conda/envs/web"]

        # softlinked_env: the cache file a soft link points at is gone, and a record is zeroed.
        root = fleet.root_of(soft)
        others = dists(root, "/opt/conda") | dists(root, "/opt/conda/envs/hard")
        dangling = first_file(root, "/opt/conda/envs/linked", skip=others)
        (root / "opt/conda/pkgs" / dangling[0] / dangling[1]).unlink()
        zeroed = first_file(root, "/opt/conda/envs/hard")[0]
        record = root / "opt/conda/envs/hard/conda-meta" / (zeroed + ".json")
        record.write_bytes(bytes(record.stat().st_size))
        found = facts(fleet, soft)
        assert problems_by_env(found) == {"/opt/conda": {}, "/opt/conda/envs/hard": {"corrupt_records": 1},
                                          "/opt/conda/envs/linked": {"dangling": 1}}
        linked = {e["path"]: e for e in found["environments"]}["/opt/conda/envs/linked"]
        assert linked["health"]["dangling"] == [{"package": dangling[0], "path": dangling[1],
                                                 "target": "/opt/conda/pkgs/%s/%s" % dangling}]
        assert linked["caches"][0]["needed_at_runtime"] is True
        assert found["complete"] is False  # the corrupt record is a problem reading the host
        assert [w for w in found["warnings"] if w.startswith("/opt/conda/envs/hard/conda-meta/%s.json: corrupt" % zeroed)
                and "zeroed" in w]
