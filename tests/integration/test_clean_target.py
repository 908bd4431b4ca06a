"""Clean to a target over SSH: conda_clean with ``target_free`` on a host whose cache is a tmpfs
of its own (mounted from the controller over the host's ``/opt/conda/pkgs``, which the host sees:
its namespace is a mount slave).

Free space is measured with ``statvfs`` from the controller; the oldest-first order comes from
access and modification times the test sets on the host's tree.
"""

import os
import shutil
import subprocess

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils.options import format_size
from test_conda_pkgs_dirs import call  # pylint: disable=import-error
from test_playbooks import CLEAN_TASK, PIP_CLEAN_TASK, STALE_AFTER_1S, run_job, task_results  # pylint: disable=import-error
from testfleet.fleet import running

BASE = 1700000000
MODULE = "pkgcache.fleet.conda_clean"
ONE_TARGET_TASK = "Clean every cache kind to one target"


@pytest.fixture(scope="module")
def host_on_tmpfs(fleet_state_factory, tmp_path_factory):
    with running(fleet_state_factory("target"), 1, ["single_root"], seed=4) as fleet:
        host = fleet.hosts[0]
        pkgs = fleet.root_of(host) / "opt" / "conda" / "pkgs"
        saved = tmp_path_factory.mktemp("pkgs") / "pkgs"
        subprocess.check_call(["cp", "-a", str(pkgs), str(saved)])
        subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(pkgs)])
        try:
            subprocess.check_call(["cp", "-a", str(saved) + "/.", str(pkgs)])
            shutil.rmtree(str(saved))
            yield fleet, host, pkgs
        finally:
            subprocess.call(["umount", str(pkgs)]) and subprocess.check_call(["umount", "-l", str(pkgs)])


def available(path):
    vfs = os.statvfs(str(path))
    return vfs.f_bavail * vfs.f_frsize


def test_the_clean_role_cleans_every_kind_to_one_target(host_on_tmpfs, tmp_path):
    fleet, host, pkgs = host_on_tmpfs
    wanted = available(pkgs) + 64 * 1024
    job = run_job(fleet, tmp_path, "clean", check=True, extravars=dict(STALE_AFTER_1S, cache_clean_target_free=str(wanted)))
    assert (job.status, job.rc) == ("successful", 0), job.stdout[-3000:]
    assert task_results(job, CLEAN_TASK) == {} and task_results(job, PIP_CLEAN_TASK) == {}, "one run, not one per kind"
    result = task_results(job, ONE_TARGET_TASK)[host]
    assert set(cache["tool"] for cache in result["caches"]) >= set(["conda", "pip"])
    on_tmpfs = [s for s in result["target"] if "/opt/conda/pkgs" in s["caches"]]
    assert [(s["wanted_free_bytes"], s["met"]) for s in on_tmpfs] == [(wanted, True)] and on_tmpfs[0]["taken"] > 0
    elsewhere = [s for s in result["target"] if "/opt/conda/pkgs" not in s["caches"]]
    assert elsewhere and all(s["met"] and s["taken"] == 0 for s in elsewhere), "the root filesystem has room"
    pip = [cache for cache in result["caches"] if cache["tool"] == "pip"]
    assert pip and all(cache["remove"] == [] for cache in pip)
    assert "target met (%s free)" % format_size(wanted) in [
        group["reason"] for cache in pip for group in cache["keep"]]


def test_target_free_over_ssh_stops_at_the_target_and_is_idempotent(host_on_tmpfs, tmp_path):
    fleet, host, pkgs = host_on_tmpfs
    args = {"targets": ["tarballs", "packages"], "pkgs_dirs": ["/opt/conda/pkgs"]}
    everything = call(fleet, host, args, tmp_path, check=True, module=MODULE)
    assert not everything["failed"], everything.get("msg")
    [cache] = everything["caches"]
    candidates = sorted(item["path"] for item in cache["remove"])
    assert len(candidates) >= 4
    # Name order is age order: the first name was used longest ago.
    for age, path in enumerate(reversed(candidates)):
        real = pkgs / os.path.relpath(path, "/opt/conda/pkgs")
        os.utime(str(real), (BASE - 86400 * (age + 1), BASE - 86400 * (age + 1)), follow_symlinks=False)
        for dirpath, dirnames, filenames in os.walk(str(real)):
            for name in dirnames + filenames:
                os.utime(os.path.join(dirpath, name), (BASE - 86400 * 400, BASE - 86400 * 400), follow_symlinks=False)
    before = available(pkgs)
    wanted = before + everything["planned_bytes"] // 2
    target = dict(args, target_free=str(wanted))

    planned = call(fleet, host, target, tmp_path, check=True, module=MODULE)
    [summary] = planned["target"]
    assert summary["available_bytes"] == before and summary["wanted_free_bytes"] == wanted and summary["met"]
    removed = sorted(planned["caches"][0]["remove"], key=lambda item: item["order"])
    assert [item["path"] for item in removed] == candidates[:len(removed)]
    assert 0 < len(removed) < len(candidates)
    assert removed[-1]["running_total_bytes"] >= wanted - before > removed[-2]["running_total_bytes"]
    assert "#%d, " % len(removed) in planned["diff"]["before"]

    done = call(fleet, host, target, tmp_path, module=MODULE)
    assert done["changed"] and not done["failed"], done.get("msg")
    assert sorted(done["removed"]) == sorted(item["path"] for item in removed)
    assert available(pkgs) == summary["free_after_bytes"] >= wanted
    kept = [os.path.relpath(p, "/opt/conda/pkgs") for p in candidates if p not in done["removed"]]
    assert kept and all(os.path.lexists(str(pkgs / rel)) for rel in kept)

    again = call(fleet, host, target, tmp_path, module=MODULE)
    assert again["changed"] is False and again["removed"] == [] and again["target"][0]["taken"] == 0
