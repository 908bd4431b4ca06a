# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clean to a target (``cleanup.Target``) on a filesystem of its own: conda caches (two
installations, so two caches on one tmpfs) and a pip and a uv cache side by side on another.

Every candidate gets a last use set by the test (by modification time for some, by access time
for others), so the oldest-first order is known; free space and cache sizes are measured with
``statvfs`` and a walk after the real run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import random
from pathlib import Path

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import walk
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import Target, describe_target
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import format_size

from .hostroot import in_root
from .test_conda_clean import build, run_clean
from .test_conda_relocate import tmpfs
from .test_pip_clean import run as run_pip
from condafab.pipcache import build_pip_cache
from condafab.uvcache import copy_cache, real_uv_cache

BASE = 1700000000
HOUR = 3600
CONDA_TARGETS = ["tarballs", "packages", "logfiles", "index_cache"]


def available(path):
    vfs = os.statvfs(path)
    return vfs.f_bavail * vfs.f_frsize


def entries_below(path):
    """``path`` and everything below it, without following a symlink."""
    found = [path]
    if os.path.isdir(path) and not os.path.islink(path):
        for dirpath, dirnames, filenames in os.walk(path):
            found.extend(os.path.join(dirpath, name) for name in dirnames + filenames)
    return found


def set_last_use(path, when, by_access):
    """Make ``when`` the last use of the item at ``path``: every entry's times older, then either
    the item's own modification time or one regular file's access time set to ``when``."""
    below = entries_below(path)
    for entry in below:
        os.utime(entry, (when - 90 * 86400, when - 90 * 86400), follow_symlinks=False)
    files = [entry for entry in below if os.path.isfile(entry) and not os.path.islink(entry)]
    if by_access and files:
        os.utime(files[-1], (when, when - 90 * 86400), follow_symlinks=False)
    else:
        os.utime(path, (when - 90 * 86400, when), follow_symlinks=False)


def units_of(result):
    """The removed items grouped as the target took them: ``[[item, ...], ...]`` in order."""
    items = sorted((i for c in result["caches"] for i in c["remove"]), key=lambda i: (i["order"], i["path"]))
    units = []
    for item in items:
        if units and units[-1][0]["order"] == item["order"]:
            units[-1].append(item)
        else:
            units.append([item])
    return units


def age_every_unit(result, real, seed):
    """Give every unit of a plan that took everything a distinct last use; ``{path: when}``."""
    units = units_of(result)
    stamps = random.Random(seed).sample(range(1, 20 * len(units) + 1), len(units))
    when_of = {}
    for number, (unit, stamp) in enumerate(zip(units, stamps)):
        for item in unit:
            when_of[item["path"]] = BASE - stamp * HOUR
            set_last_use(real(item["path"]), BASE - stamp * HOUR, by_access=number % 2 == 1)
    return when_of


def kept_paths(result):
    return dict((path, group["reason"]) for c in result["caches"] for group in c["keep"] for path in group["paths"])


def assert_oldest_first_until_met(result, when_of, need):
    """Units come oldest-first, each with the running total so far; the last one taken is the
    first to reach ``need`` bytes (the one before did not)."""
    units = units_of(result)
    assert units, "the target takes something"
    times = [unit[0]["last_used"] for unit in units]
    assert times == sorted(times) and len(set(times)) == len(times)
    for unit in units:
        assert set(item["last_used"] for item in unit) == set([when_of[item["path"]] for item in unit])
    totals = [unit[0]["running_total_bytes"] for unit in units]
    assert totals == sorted(totals)
    assert totals[-1] >= need > (totals[-2] if len(totals) > 1 else 0)
    taken = set(item["path"] for unit in units for item in unit)
    untaken = [when for path, when in when_of.items() if path not in taken]
    assert untaken and min(untaken) > times[-1], "nothing older than the last unit taken is kept"


# -- conda --------------------------------------------------------------------------------------


def conda_host(tmp_path, mount):
    fsroot, manifest = build(tmp_path, "two_installs")
    assert str(fsroot) == mount
    return fsroot, manifest


def clean_conda(fsroot, target, check_mode=False):
    return in_root(fsroot, run_clean, CONDA_TARGETS, check_mode=check_mode, target=target)


@pytest.fixture
def conda_fs(tmp_path):
    with tmpfs(tmp_path / "host", size="4m") as mount:
        fsroot, manifest = conda_host(tmp_path, mount)
        everything = clean_conda(fsroot, Target(free=("percent", 100.0)), check_mode=True)
        assert len(everything["caches"]) == 2 and all(c["remove"] for c in everything["caches"])
        when_of = age_every_unit(everything, manifest.real, seed=11)
        yield mount, fsroot, manifest, everything, when_of


def test_conda_target_free_stops_at_the_target_oldest_first_over_both_caches(conda_fs):
    mount, fsroot, manifest, everything, when_of = conda_fs
    total = os.statvfs(mount).f_blocks * os.statvfs(mount).f_frsize
    before = available(mount)
    percent = round((before + everything["planned_bytes"] / 2.0) * 100.0 / total, 4)
    target = Target(free=("percent", percent))

    planned = clean_conda(fsroot, target, check_mode=True)
    [summary] = planned["target"]
    wanted = summary["wanted_free_bytes"]
    assert wanted > before and summary["available_bytes"] == before and summary["met"]
    assert_oldest_first_until_met(planned, when_of, wanted - before)
    assert len([c for c in planned["caches"] if c["remove"]]) == 2, "the order runs over both caches on the filesystem"
    reason = "target met (%s%% free)" % percent
    kept = kept_paths(planned)
    assert set(kept[p] for p in when_of if p in kept) == set([reason])
    assert "stopped at %s" % summary["stopped_at"] in describe_target(summary)

    done = clean_conda(fsroot, target)
    assert sorted(done["removed"]) == sorted(planned["paths"]) and done["errors"] == []
    assert done["caches"] == [dict(c, freed_bytes=c["planned_bytes"]) for c in planned["caches"]]
    measured = available(mount)
    assert measured == summary["free_after_bytes"] >= wanted
    last_unit = units_of(planned)[-1]
    before_last = last_unit[0]["running_total_bytes"] - sum(i["disk_bytes"] for i in last_unit)
    assert before + before_last < wanted, "stopped within one item of the target"
    assert all(os.path.lexists(manifest.real(p)) for p in kept)

    again = clean_conda(fsroot, target)
    assert again["changed"] is False and again["removed"] == [] and again["target"][0]["taken"] == 0
    assert again["target"][0]["met"] and "target met on 1 of 1" in again["msg"]


def test_conda_max_cache_size_brings_each_cache_down_oldest_first(conda_fs):
    mount, fsroot, manifest, everything, when_of = conda_fs
    caches = ("/opt/miniconda3/pkgs", "/home/alice/miniforge3/pkgs")
    sizes = dict((path, walk(str(manifest.real(path))).on_disk) for path in caches)
    limit = max(sizes.values()) - 64 * 1024
    target = Target(max_cache_size=limit)

    planned = clean_conda(fsroot, target, check_mode=True)
    [summary] = planned["target"]
    assert dict((p, s["size_bytes"]) for p, s in summary["cache_sizes"].items()) == sizes
    big = max(sizes, key=sizes.get)
    assert [c["path"] for c in planned["caches"] if c["remove"]] == [big], "only the cache above the limit loses items"
    assert_oldest_first_until_met(planned, dict((p, w) for p, w in when_of.items() if p.startswith(big + "/")),
                                  sizes[big] - limit)
    assert "target met (cache at most %s)" % format_size(limit) in set(kept_paths(planned).values())

    done = clean_conda(fsroot, target)
    assert sorted(done["removed"]) == sorted(planned["paths"])
    assert walk(str(manifest.real(big))).on_disk == summary["cache_sizes"][big]["size_after_bytes"] <= limit
    assert clean_conda(fsroot, target)["changed"] is False


# -- pip and uv ---------------------------------------------------------------------------------


def clean_pip(mount, target, check_mode=False, uv=True):
    return run_pip(Path(mount), pip=os.path.join(mount, "pip"), uv_dir=os.path.join(mount, "uv"),
                   check_mode=check_mode, min_age="0", uv="prune" if uv else None, target=target)


@pytest.fixture
def pip_fs(tmp_path):
    with tmpfs(tmp_path / "disk", size="4m") as mount:
        build_pip_cache(tmp_path / "disk" / "pip", seed=3, http_entries=24, wheels=8, now=BASE)
        uv = real_uv_cache(tmp_path / "disk" / "uv")
        # What older uv releases leave: buckets this uv's prune removes, each a unit of its own.
        for old in ("wheels-v6", "sdists-v9", "simple-v24", "interpreter-v4"):
            copy_cache(uv / "wheels-v8", uv / old)
        everything = clean_pip(mount, Target(free=("percent", 100.0)), check_mode=True)
        when_of = age_every_unit(everything, lambda path: path, seed=5)
        yield mount, everything, when_of


def dangling(top):
    return [p for p in entries_below(top) if os.path.islink(p) and not os.path.exists(p)]


def test_pip_and_uv_target_free_takes_entries_oldest_first_over_both_caches(pip_fs):
    mount, everything, when_of = pip_fs
    units = units_of(everything)
    assert len(units) > 30, "entries, not whole parts: a target can stop between them"
    before = available(mount)
    target = Target(free=("bytes", before + everything["planned_bytes"] // 2))

    planned = clean_pip(mount, target, check_mode=True)
    [summary] = planned["target"]
    assert_oldest_first_until_met(planned, when_of, summary["wanted_free_bytes"] - before)
    assert set(c["kind"] for c in planned["caches"] if c["remove"]) == set(["pip", "uv"])

    done = clean_pip(mount, target)
    assert sorted(done["removed"]) == sorted(planned["paths"])
    assert available(mount) == summary["free_after_bytes"] >= summary["wanted_free_bytes"]
    assert dangling(os.path.join(mount, "uv")) == [], "uv never finds a pointer to a removed archive"
    assert clean_pip(mount, target)["changed"] is False


def test_pip_max_cache_size(pip_fs):
    mount, everything, when_of = pip_fs
    pip = os.path.join(mount, "pip")
    limit = walk(pip).on_disk // 3
    target = Target(max_cache_size=limit)

    planned = clean_pip(mount, target, check_mode=True, uv=False)
    pip_only = dict((p, w) for p, w in when_of.items() if p.startswith(pip + "/"))
    assert_oldest_first_until_met(planned, pip_only, walk(pip).on_disk - limit)

    done = clean_pip(mount, target, uv=False)
    assert sorted(done["removed"]) == sorted(planned["paths"])
    assert walk(pip).on_disk == planned["target"][0]["cache_sizes"][pip]["size_after_bytes"] <= limit
    assert clean_pip(mount, target, uv=False)["changed"] is False


def test_no_target_takes_everything_as_before(pip_fs):
    mount, everything, _when_of = pip_fs
    plain = clean_pip(mount, None, check_mode=True)
    assert plain["target"] is None
    assert plain["planned_bytes"] == everything["planned_bytes"]
