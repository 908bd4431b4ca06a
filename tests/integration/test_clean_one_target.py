"""One target over every kind, over SSH: ``pkgcache.fleet.cache_clean`` on a host whose ``/opt``
is a tmpfs of its own (mounted from the controller; the host sees it, its namespace being a mount
slave) holding the conda installation, a pip cache and a real uv cache.

The test gives every item a last use of its own, the kinds interleaved; free space is measured
with ``statvfs`` from the controller.
"""

import os
import subprocess

import pytest

from condafab.pipcache import build_pip_cache
from condafab.uvcache import copy_cache, real_uv_cache
from test_conda_pkgs_dirs import call  # pylint: disable=import-error
from testfleet.fleet import running
from unit.plugins.module_utils.test_cleanup_target import (
    age_every_unit, assert_oldest_first_until_met, available, kept_paths, units_of)

MODULE = "pkgcache.fleet.cache_clean"
ENVIRONMENT = {"PIP_CACHE_DIR": "/opt/pip-cache", "UV_CACHE_DIR": "/opt/uv-cache"}
ARGS = {"kinds": ["conda", "pip"], "environment": ENVIRONMENT,
        "conda": {"targets": ["tarballs", "packages"], "pkgs_dirs": ["/opt/conda/pkgs"], "busy_age": "1s"},
        "pip": {"min_age": "0", "uv": "prune"}}


@pytest.fixture(scope="module")
def opt_on_tmpfs(fleet_state_factory, tmp_path_factory):
    with running(fleet_state_factory("onetarget"), 1, ["single_root"], seed=6) as fleet:
        host = fleet.hosts[0]
        opt = fleet.root_of(host) / "opt"
        saved = tmp_path_factory.mktemp("opt") / "opt"
        subprocess.check_call(["cp", "-a", str(opt), str(saved)])
        subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(opt)])
        try:
            subprocess.check_call(["cp", "-a", str(saved) + "/.", str(opt)])
            build_pip_cache(opt / "pip-cache", seed=7, http_entries=12, wheels=5)
            copy_cache(real_uv_cache(opt / "uv-cache") / "wheels-v8", opt / "uv-cache" / "wheels-v6")
            yield fleet, host, opt
        finally:
            subprocess.call(["umount", str(opt)]) and subprocess.check_call(["umount", "-l", str(opt)])


def test_one_target_over_ssh_takes_oldest_first_across_kinds_and_is_idempotent(opt_on_tmpfs, tmp_path):
    fleet, host, opt = opt_on_tmpfs
    everything = call(fleet, host, dict(ARGS, target_free="100%"), tmp_path, check=True, module=MODULE)
    assert not everything["failed"], everything.get("msg")
    assert set(c["tool"] for c in everything["caches"] if c["remove"]) == set(["conda", "pip", "uv"])
    when_of = age_every_unit(everything, lambda path: str(opt.parent) + path, seed=23)
    kinds = dict((item["path"], cache["tool"]) for cache in everything["caches"] for item in cache["remove"])
    before = available(opt)
    wanted = before + everything["planned_bytes"] // 2
    target = dict(ARGS, target_free=str(wanted))

    planned = call(fleet, host, target, tmp_path, check=True, module=MODULE)
    assert not planned["failed"], planned.get("msg")
    [summary] = planned["target"]
    assert summary["available_bytes"] == before and summary["wanted_free_bytes"] == wanted and summary["met"]
    assert_oldest_first_until_met(planned, when_of, wanted - before)
    taken = [item["path"] for unit in units_of(planned) for item in unit]
    assert set(kinds[path] for path in taken) == set(["conda", "pip", "uv"]), "one order over every kind"
    assert "#%d, " % len(units_of(planned)) in planned["diff"]["before"]

    done = call(fleet, host, target, tmp_path, module=MODULE)
    assert done["changed"] and not done["failed"], done.get("msg")
    assert sorted(done["removed"]) == sorted(taken)
    assert available(opt) == summary["free_after_bytes"] >= wanted
    last = units_of(planned)[-1]
    assert before + last[0]["running_total_bytes"] - sum(i["disk_bytes"] for i in last) < wanted, \
        "stopped within one item of the target"
    kept = [path for path in kept_paths(planned) if path in when_of]
    assert kept and all(os.path.lexists(str(opt.parent) + path) for path in kept)

    again = call(fleet, host, target, tmp_path, module=MODULE)
    assert again["changed"] is False and again["removed"] == [] and again["target"][0]["taken"] == 0
    assert "diff" not in again or again["diff"]["before"] == ""
