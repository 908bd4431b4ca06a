"""micromamba without conda over SSH: cache_facts and conda_clean (check, then real) on a host
whose micromamba roots hold mamba >= 2.6's channel-folder cache, mamba's trash and its locks.

The cache in the channel-folder layout is a tmpfs of its own (mounted from the controller over
the host's path, which the host sees: its namespace is a mount slave), so the bytes a clean
frees are measured with ``statvfs`` from the controller; sizes are summed from ``lstat`` there.
"""

import json
import os
import subprocess

import pytest

from mambalock import Holder
from test_conda_pkgs_dirs import call  # pylint: disable=import-error
from testfleet.fleet import running
from testfleet.layouts import MICROMAMBA

ALICE_PKGS = "/home/alice/.local/share/mamba/pkgs"
LOCKED = "/srv/mamba/pkgs"
ML = "/home/alice/.local/share/mamba/envs/ml"


def available(path):
    vfs = os.statvfs(str(path))
    return vfs.f_bavail * vfs.f_frsize


def on_disk(paths):
    """``st_blocks * 512`` of every inode under ``paths`` once, as the controller sees them."""
    seen, total = set(), 0
    for top in map(str, paths):
        names = [top]
        if os.path.isdir(top) and not os.path.islink(top):
            names += [os.path.join(d, n) for d, dirs, files in os.walk(top) for n in dirs + files]
        for name in names:
            st = os.lstat(name)
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_blocks * 512
    return total


@pytest.fixture(scope="module")
def mamba_host(fleet_state_factory, tmp_path_factory):
    with running(fleet_state_factory("mamba"), 1, [MICROMAMBA], seed=5) as fleet:
        host = fleet.hosts[0]
        root = fleet.root_of(host)
        for partial in root.glob("**/pkgs/*.partial"):
            os.utime(str(partial), (1, 1))  # stale downloads: do not let them mark caches busy
        pkgs = root / ALICE_PKGS.lstrip("/")
        saved = tmp_path_factory.mktemp("pkgs") / "pkgs"
        subprocess.check_call(["cp", "-a", str(pkgs), str(saved)])
        st = os.stat(str(pkgs))
        subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=16m,uid=%d,gid=%d,mode=0755" % (st.st_uid, st.st_gid),
                               "tmpfs", str(pkgs)])
        try:
            subprocess.check_call(["cp", "-a", str(saved) + "/.", str(pkgs)])
            yield fleet, host, root, pkgs
        finally:
            subprocess.call(["umount", str(pkgs)]) and subprocess.check_call(["umount", "-l", str(pkgs)])


def manifest(fleet, host):
    return json.loads(fleet.manifest_of(host).read_text())


def test_facts_then_check_then_clean_free_exactly_the_reclaimable_bytes(mamba_host, tmp_path):
    fleet, host, root, pkgs = mamba_host
    built = manifest(fleet, host)
    env = {"environment": built["environment"]}
    facts = call(fleet, host, env, tmp_path, module="pkgcache.fleet.cache_facts")
    assert not facts["failed"], facts.get("msg")
    conda = facts["ansible_facts"]["conda_cache"]
    assert sorted((i["root"], i["tool"]) for i in conda["installations"]) == sorted(
        (i["root"], "mamba") for i in built["installations"])
    caches = dict((c["path"], c) for c in conda["caches"])
    alice = caches[ALICE_PKGS]
    intended = built["caches"][ALICE_PKGS]
    assert alice["tool"] == "mamba" and sorted(p["dist"] for p in alice["unused_packages"]) == intended["orphans"]
    assert all(p["path"] == "%s/%s/%s" % (ALICE_PKGS, intended["folders"][p["dist"]], p["dist"])
               for p in alice["unused_packages"])
    assert alice["disk_bytes"] == on_disk([pkgs])

    with Holder(root / LOCKED.lstrip("/") / "pkgs.lock"):
        check = call(fleet, host, env, tmp_path, check=True, module="pkgcache.fleet.conda_clean")
    assert not check["failed"], check.get("msg")
    plans = dict((c["path"], c) for c in check["caches"])
    assert plans[LOCKED]["skipped"] == "locked: %s/pkgs.lock is held by another process" % LOCKED
    plan = plans[ALICE_PKGS]
    assert plan["kind"] == "mamba" and plan["skipped"] is None
    # everything safe goes: the plan is the facts' reclaimable bytes, and what lstat sums for its paths
    assert plan["planned_bytes"] == alice["reclaimable_bytes"]
    assert plan["planned_bytes"] == on_disk([root / i["path"].lstrip("/") for i in plan["remove"]])
    assert "%s/pkgs.lock" % ALICE_PKGS in [i["path"] for i in plan["remove"]]
    assert sorted(os.path.relpath(p, ML) for p in check["tempfiles"] if p.startswith(ML + "/")) == \
        built["envs"][ML]["mamba_trash"]

    before = available(pkgs)
    done = call(fleet, host, env, tmp_path, module="pkgcache.fleet.conda_clean")
    assert done["changed"] and not done["failed"], done.get("msg")
    gained = available(pkgs) - before
    cleaned = dict((c["path"], c) for c in done["caches"])[ALICE_PKGS]
    assert gained == cleaned["freed_bytes"] == plan["planned_bytes"] == done["freed_bytes"][ALICE_PKGS]
    assert not any(os.path.lexists(str(root / p.lstrip("/"))) for p in done["removed"])
    for dist in intended["referenced_by"]:
        assert (pkgs / intended["folders"][dist] / dist / "info" / "index.json").is_file(), dist
    for prefix in built["envs"]:
        for dirpath, _dirs, files in os.walk(str(root / prefix.lstrip("/"))):
            for name in files:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    assert (root / os.readlink(path).lstrip("/")).exists(), path

    again = call(fleet, host, env, tmp_path, module="pkgcache.fleet.conda_clean")
    assert again["changed"] is False and again["tempfiles"] == []
    after = call(fleet, host, env, tmp_path, module="pkgcache.fleet.cache_facts")
    alice_after = dict((c["path"], c) for c in after["ansible_facts"]["conda_cache"]["caches"])[ALICE_PKGS]
    assert alice_after["reclaimable_bytes"] == 0 and alice_after["disk_bytes"] == on_disk([pkgs])
