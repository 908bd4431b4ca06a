"""rattler_cache_clean and cache_facts (gather: rattler) over SSH, as root for alice's cache.

alice's pixi world is made by py-rattler on the controller inside the host's tree: two pixi
workspaces and a global tool installed from a file:// channel through her
``~/.cache/rattler/cache``, which is a tmpfs of its own (mounted from the controller; the host's
namespace is a mount slave) so that freed bytes are exact ``statvfs`` deltas.  One workspace is
deleted.  The records rattler wrote name the controller's view of the tree, so the host root's
prefix is cut from them, as moving a tree does; everything is then chowned to alice.
"""

import os
import subprocess

import pytest

from condafab.channel import file_channel
from condafab.host import HostBuilder
from test_conda_pkgs_dirs import call  # pylint: disable=import-error
from testfleet.fleet import running
from unit.plugins.module_utils.test_rattler_cache import install_home, lstat_bytes

pytest.importorskip("rattler")

ALICE = 1001
HOME = "/home/alice"
ROOT_OF_CACHE = HOME + "/.cache/rattler/cache"


def available(path):
    vfs = os.statvfs(str(path))
    return vfs.f_bavail * vfs.f_frsize


@pytest.fixture(scope="module")
def pixi_host(fleet_state_factory, tmp_path_factory):
    with running(fleet_state_factory("rattler"), 1, ("multi_user",), seed=5) as fleet:
        host = fleet.hosts[0]
        root = fleet.root_of(host)
        home = root / HOME.lstrip("/")
        mount = home / ".cache" / "rattler"
        mount.mkdir(parents=True, exist_ok=True)
        subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755,uid=%d,gid=%d" % (ALICE, ALICE),
                               "tmpfs", str(mount)])
        try:
            top = tmp_path_factory.mktemp("channel")
            channel = file_channel(HostBuilder(top / "host", seed=21).catalog(packages=16, files=4), top / "channel")
            pkgs, installed = install_home(channel, home)
            for meta in home.rglob("conda-meta"):
                for record in meta.glob("*.json"):
                    record.write_text(record.read_text().replace(str(root), ""))
            for part in (".cache", ".pixi", "src"):
                subprocess.check_call(["chown", "-R", "%d:%d" % (ALICE, ALICE), str(home / part)])
            yield fleet, host, pkgs, installed
        finally:
            subprocess.call(["umount", str(mount)]) and subprocess.check_call(["umount", "-l", str(mount)])


def test_facts_and_clean_as_root_for_alices_cache_with_exact_bytes(pixi_host, tmp_path):
    fleet, host, pkgs, installed = pixi_host
    live = set(installed[str(pkgs.parents[3] / "src/app/.pixi/envs/default")]) | set(
        installed[str(pkgs.parents[3] / ".pixi/envs/tool")])
    gone = set(n for names in installed.values() for n in names) - live
    assert live and gone
    expected_local = [str(pkgs / n) for n in gone] + [str(pkgs / n) + ".lock" for n in gone]
    expected = sorted(p.replace(str(pkgs), ROOT_OF_CACHE + "/pkgs") for p in expected_local)

    facts = call(fleet, host, {"gather": ["rattler"], "users": ["alice"], "list_packages": True}, tmp_path, module="pkgcache.fleet.cache_facts")
    assert not facts["failed"], facts.get("msg")
    rattler = facts["ansible_facts"]["rattler_cache"]
    # alice's conda environments (her environments.txt) are read too; the deleted workspace is gone.
    pixi = [p for p in rattler["environments"] if "/.pixi/" in p]
    assert rattler["complete"] and sorted(pixi) == [HOME + "/.pixi/envs/tool", HOME + "/src/app/.pixi/envs/default"]
    cache = rattler["caches"][ROOT_OF_CACHE]
    assert cache["tool"] == "rattler" and cache["users"] == ["alice"]
    assert {p["name"] for p in cache["packages"] if not p["used_by"]} == gone
    assert cache["unused_reclaimable_bytes"] == lstat_bytes(expected_local)

    planned = call(fleet, host, {"users": ["alice"]}, tmp_path, check=True, module="pkgcache.fleet.rattler_cache_clean")
    assert not planned["failed"] and planned["changed"], planned.get("msg")
    assert sorted(i["path"] for i in planned["caches"][0]["remove"]) == expected
    assert planned["planned_bytes"] == lstat_bytes(expected_local)
    assert all(line.split("  (")[0] in expected for line in planned["diff"]["before"].splitlines())

    before = available(pkgs)
    done = call(fleet, host, {"users": ["alice"]}, tmp_path, module="pkgcache.fleet.rattler_cache_clean")
    assert not done["failed"] and done["changed"], done.get("msg")
    assert sorted(done["removed"]) == expected
    assert available(pkgs) - before == done["planned_bytes"] == planned["planned_bytes"]
    left = sorted(n for n in os.listdir(str(pkgs)) if not n.startswith("."))
    assert left == sorted(list(live) + [n + ".lock" for n in live])
    assert all(os.lstat(str(pkgs / n)).st_uid == ALICE for n in left)

    again = call(fleet, host, {"users": ["alice"]}, tmp_path, module="pkgcache.fleet.rattler_cache_clean")
    assert again["changed"] is False and again["removed"] == [] and not again["failed"]
