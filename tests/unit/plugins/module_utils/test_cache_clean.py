# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One target over every kind (``cache_clean``): two conda caches, a pip cache and a real uv
cache on one tmpfs, their items given interleaved last uses; the combined run takes them
oldest-first whatever their kind, and ``statvfs`` measures the result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from condafab.layouts import ROOT_USER
from condafab.pipcache import build_pip_cache
from condafab.uvcache import copy_cache, real_uv_cache

from ansible_collections.pkgcache.fleet.plugins.module_utils import cache_clean
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import Target
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_clean import Policy
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_clean import Request
from ansible_collections.pkgcache.fleet.plugins.module_utils.rattler_cache import Search
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User

from .hostroot import host_users, in_root
from .test_cleanup_target import (
    BASE, CONDA_TARGETS, age_every_unit, assert_oldest_first_until_met, available, conda_host, kept_paths, units_of)
from .test_conda_clean import USERS, run_clean
from .test_conda_relocate import tmpfs

# Inside the fixture host: its pip and uv caches sit next to the conda installations.
ENV = {"PIP_CACHE_DIR": "/pip", "UV_CACHE_DIR": "/uv", "PIP_CONFIG_FILE": "/no-pip-config"}


def combined(target, check_mode=False):
    """cache_clean's run inside the fixture host: conda's caches, and root's pip and uv caches."""
    warnings = []
    conda = Host.load(host_users(USERS)), dict(targets=set(CONDA_TARGETS), policy=Policy())
    pip = host_users([ROOT_USER]), ENV, Request.from_options(min_age="0", uv="prune", now=BASE, target=target)
    result = cache_clean.clean(check_mode, target, warnings.append, conda=conda, pip=pip)
    assert warnings == [] and result["errors"] == [], (warnings, result["errors"])
    return result


@pytest.fixture
def every_kind(tmp_path):
    with tmpfs(tmp_path / "host", size="8m") as mount:
        fsroot, _manifest = conda_host(tmp_path, mount)
        build_pip_cache(fsroot / "pip", seed=3, http_entries=16, wheels=6, now=BASE)
        uv = real_uv_cache(fsroot / "uv")
        for old in ("wheels-v6", "sdists-v9"):
            copy_cache(uv / "wheels-v8", uv / old)
        everything = in_root(fsroot, combined, Target(free=("percent", 100.0)), check_mode=True)
        when_of = age_every_unit(everything, lambda path: str(fsroot) + path, seed=17)
        yield mount, fsroot, everything, when_of


def kinds_of(result, paths):
    by_cache = dict((item["path"], cache["kind"]) for cache in result["caches"] for item in cache["remove"])
    return [by_cache[path] for path in paths]


def half_of(mount, everything):
    """A target that frees half of what cleaning everything would."""
    return Target(free=("bytes", available(mount) + everything["planned_bytes"] // 2))


def to_target(mount, run, target, when_of, real):
    """Clean ``run(target, check_mode)`` to ``target``: check mode takes oldest-first over every
    cache and stops within one item of the target, the real run removes exactly that and
    ``statvfs`` measures the target met, a second run removes nothing.  The check-mode result."""
    before = available(mount)
    planned = run(target, True)
    [summary] = planned["target"]
    assert sorted(summary["caches"]) == sorted(c["path"] for c in planned["caches"])
    assert_oldest_first_until_met(planned, when_of, summary["wanted_free_bytes"] - before)
    kept = kept_paths(planned)
    assert set(kept[p] for p in when_of if p not in planned["paths"]) == set([target.met_reason])

    done = run(target, False)
    assert sorted(done["removed"]) == sorted(planned["paths"]) and done["changed"] is True
    assert [dict(c, freed_bytes=0) for c in done["caches"]] == [dict(c, freed_bytes=0) for c in planned["caches"]]
    assert available(mount) == summary["free_after_bytes"] >= summary["wanted_free_bytes"]
    last = units_of(planned)[-1]
    before_last = last[0]["running_total_bytes"] - sum(i["disk_bytes"] for i in last)
    assert before + before_last < summary["wanted_free_bytes"], "stopped within one item of the target"
    assert all(os.path.lexists(real(p)) for p in when_of if p not in planned["paths"])

    again = run(target, False)
    assert again["changed"] is False and again["removed"] == [] and again["target"][0]["taken"] == 0
    assert again["target"][0]["met"]
    return planned


def test_one_target_takes_the_oldest_items_of_every_kind_first(every_kind):
    mount, fsroot, everything, when_of = every_kind
    assert set(c["tool"] for c in everything["caches"] if c["remove"]) == set(["conda", "pip", "uv"])
    by_age = kinds_of(everything, sorted(when_of, key=when_of.get))
    assert sum(1 for a, b in zip(by_age, by_age[1:]) if a != b) > 10, "kinds interleave in last use"
    target = half_of(mount, everything)
    conda_alone = in_root(fsroot, run_clean, CONDA_TARGETS, check_mode=True, target=target)

    def run(target, check_mode):
        return in_root(fsroot, combined, target, check_mode=check_mode)

    planned = to_target(mount, run, target, when_of, lambda path: str(fsroot) + path)
    taken = kinds_of(planned, planned["paths"])
    assert set(taken) == set(["conda", "pip", "uv"]), "the order runs over every kind"
    conda_taken = set(p for p, kind in zip(planned["paths"], taken) if kind == "conda")
    assert set(conda_alone["paths"]) > conda_taken, "conda's module alone takes conda items younger than pip's"


@pytest.fixture
def rattler_and_pip(tmp_path):
    pytest.importorskip("rattler")
    from .test_rattler_cache import install_home  # pylint: disable=import-outside-toplevel  # needs py-rattler

    with tmpfs(tmp_path / "fs", size="48m") as mount:
        home = tmp_path / "fs" / "alice"
        install_home(rattler_channel(tmp_path), home)
        build_pip_cache(home / "pip", seed=9, http_entries=16, wheels=6, now=BASE)
        env = {"PIP_CACHE_DIR": str(home / "pip"), "UV_CACHE_DIR": str(home / "no-uv"), "PIP_CONFIG_FILE": os.devnull}
        yield mount, User("root", 0, 0, str(home)), env


def rattler_channel(tmp_path):
    from condafab.channel import file_channel  # pylint: disable=import-outside-toplevel
    from condafab.host import HostBuilder  # pylint: disable=import-outside-toplevel

    catalog = HostBuilder(tmp_path / "catalog", seed=21).catalog(packages=16, files=4)
    return file_channel(catalog, tmp_path / "channel")


def test_one_target_over_rattler_and_pip_caches(rattler_and_pip):
    mount, user, env = rattler_and_pip

    def run(target, check_mode):
        warnings = []
        pip = [user], env, Request.from_options(min_age="0", now=BASE, target=target)
        result = cache_clean.clean(check_mode, target, warnings.append, pip=pip, rattler=([user], env, Search()))
        assert warnings == [] and result["errors"] == [], (warnings, result["errors"])
        return result

    everything = run(Target(free=("percent", 100.0)), True)
    assert set(c["tool"] for c in everything["caches"] if c["remove"]) == set(["pip", "rattler"])
    assert everything["environments"]
    when_of = age_every_unit(everything, lambda path: path, seed=29)
    # A target met halfway through the oldest rattler package, whatever pip entries are older.
    tool_of = dict((i["path"], c["tool"]) for c in everything["caches"] for i in c["remove"])
    bytes_of = dict((i["path"], i["disk_bytes"]) for c in everything["caches"] for i in c["remove"])
    by_age = {}
    for path, when in when_of.items():
        by_age.setdefault(when, []).append(path)
    older = 0
    for when in sorted(by_age):
        unit = sum(bytes_of[path] for path in by_age[when])
        if tool_of[by_age[when][0]] == "rattler":
            break
        older += unit
    assert older > 0, "pip entries are older than the oldest rattler package"
    target = Target(free=("bytes", available(mount) + older + unit // 2))
    planned = to_target(mount, run, target, when_of, lambda path: path)
    assert set(c["tool"] for c in planned["caches"] if c["remove"]) == set(["pip", "rattler"])
