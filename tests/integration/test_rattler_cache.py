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
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes
from test_conda_pkgs_dirs import call  # pylint: disable=import-error
from test_playbooks import CLEAN_TASK, FACT_TASK, PIP_CLEAN_TASK, REPORT_TASK, run_job, task_results  # pylint: disable=import-error
from testfleet.fleet import running
from unit.plugins.module_utils.test_rattler_cache import install_home, lstat_bytes

pytest.importorskip("rattler")

ALICE = 1001
HOME = "/home/alice"
ROOT_OF_CACHE = HOME + "/.cache/rattler/cache"
RATTLER_CLEAN_TASK = "Clean pixi / rattler package caches"


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


def test_site_check_run_reports_and_exports_the_rattler_cache_with_the_bytes_of_its_facts(pixi_host, tmp_path):
    """The site playbook in check mode with rattler on (nothing is removed, the next test still
    finds every package): the report's rattler figures, free space and environments view, the
    role's rattler plan, then the metrics module over the same facts, all equal to the facts."""
    fleet, host, pkgs, installed = pixi_host
    live = set(installed[str(pkgs.parents[3] / "src/app/.pixi/envs/default")]) | set(
        installed[str(pkgs.parents[3] / ".pixi/envs/tool")])
    gone = set(n for names in installed.values() for n in names) - live
    unused = lstat_bytes([str(pkgs / n) for n in gone] + [str(pkgs / n) + ".lock" for n in gone])
    job = run_job(fleet, tmp_path / "site", "site", check=True,
                  extravars={"pkgcache_rattler": True, "cache_clean_rattler": True})
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    facts = task_results(job, FACT_TASK)[host]["ansible_facts"]
    cache = facts["rattler_cache"]["caches"][ROOT_OF_CACHE]
    assert cache["unused_reclaimable_bytes"] == unused > 0
    record = job.host(host)
    assert record["tools"]["rattler"] == {"caches": 1, "disk_bytes": cache["usage"]["disk_bytes"], "reclaimable_bytes": unused}
    assert record["rattler"]["disk_bytes"] == facts["rattler_cache"]["totals"]["rattler"]["disk_bytes"]
    assert record["cache_bytes"] == sum(facts[name]["totals"][key]["disk_bytes"] for name, key in (
        ("pip_cache", "all"), ("rattler_cache", "rattler"))) + facts["conda_cache"]["totals"]["disk_bytes"]
    # The cache's tmpfs is one of the host's filesystems, with its statvfs figures.
    [tmpfs] = [fs for fs in record["filesystems"] if fs["mount"] == HOME + "/.cache/rattler"]
    assert tmpfs["total_bytes"] == 16 * 1024 * 1024 and tmpfs["available_bytes"] == available(pkgs)
    # The role's rattler step planned exactly the unused packages; the report's clean counts it.
    plans = dict((task, task_results(job, task)[host]) for task in (CLEAN_TASK, PIP_CLEAN_TASK, RATTLER_CLEAN_TASK))
    assert plans[RATTLER_CLEAN_TASK]["planned_bytes"] == unused
    assert record["clean"]["check_mode"] and record["clean"]["planned_bytes"] == sum(
        plan["planned_bytes"] for plan in plans.values())
    # The environments view, from the environment facts the site playbook gathers by default in the
    # same module run: with rattler gathered too, the pixi prefixes are there, checked and whole.
    envs = facts["conda_envs"]["environments"]
    assert envs and record["environments"]["count"] == len(envs)
    pixi = [e for e in envs if e["tool"] == "rattler"]
    assert pixi and all(e["health"]["healthy"] and e["health"]["checked_files"] > 0 for e in pixi), pixi
    # The run's summary line names rattler with its bytes, pip and uv each apart.
    line = task_results(job, REPORT_TASK)[host]["msg"]
    tools = job.report["totals"]["tools"]
    for tool in ("pip", "rattler", "uv"):
        assert "%s %s" % (tool, human_bytes(tools[tool]["disk_bytes"]) if tool in tools else "0 B") in line, line

    written = call(fleet, host, {"dest": "/var/lib/node-exporter", "facts": facts}, tmp_path, module="pkgcache.fleet.cache_metrics")
    assert not written["failed"] and written["changed"], written.get("msg")
    text = (fleet.root_of(host) / "var/lib/node-exporter/pkgcache.prom").read_text()
    samples = dict(((s.name, tuple(sorted(s.labels.items()))), s.value)
                   for family in text_string_to_metric_families(text) for s in family.samples)
    labels = (("path", ROOT_OF_CACHE), ("tool", "rattler"))
    assert samples[("pkgcache_cache_size_bytes", labels)] == cache["usage"]["disk_bytes"]
    assert samples[("pkgcache_cache_reclaimable_bytes", labels)] == unused


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
