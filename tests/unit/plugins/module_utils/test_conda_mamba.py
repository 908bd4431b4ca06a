# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mamba and micromamba in the conda model: mamba >= 2.6's channel folders, micromamba roots,
mamba's POSIX locks held by a real other process, and mamba's trash, on real fixture trees."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from condafab.host import mamba_cache_folder
from condafab.layouts import DEFAULT_USERS, LAYOUTS, ROOT_USER
from mambalock import Holder

from ansible_collections.pkgcache.fleet.plugins.module_utils import _removal, conda_mamba, metrics
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup import plan_backup
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import Store
from ansible_collections.pkgcache.fleet.plugins.module_utils._procs import lock_is_held
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_clean import TARGETS, Policy, clean
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_facts import gather
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host

from .hostroot import host_users, in_root

USERS = [ROOT_USER] + list(DEFAULT_USERS)
ALICE = "/home/alice/.local/share/mamba"
ALICE_PKGS = ALICE + "/pkgs"

# -- the channel-folder path rules -------------------------------------------------------------

_label = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
_segment = st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,12}", fullmatch=True).filter(lambda s: s not in ("t", ".", ".."))
_subdir = st.sampled_from(["noarch", "linux-64", "linux-aarch64", "osx-arm64", "win-64", "emscripten-wasm32"])
_dist = st.tuples(st.from_regex(r"[a-z_][a-z0-9_.-]{0,12}", fullmatch=True), st.from_regex(r"[0-9][0-9a-z.]{0,6}", fullmatch=True),
                  st.from_regex(r"[a-z0-9_]{1,10}", fullmatch=True)).map("-".join)


@settings(max_examples=300, deadline=None)
@given(scheme=st.sampled_from(["https", "http", "s3"]), host=st.lists(_label, min_size=1, max_size=3).map(".".join),
       port=st.one_of(st.none(), st.integers(1, 65535)), channel=st.lists(_segment, min_size=1, max_size=3),
       subdir=_subdir, dist=_dist, ext=st.sampled_from([".conda", ".tar.bz2"]),
       token=st.one_of(st.none(), st.from_regex(r"[a-zA-Z0-9_-]{3,20}", fullmatch=True)),
       login=st.one_of(st.none(), st.tuples(_label, st.from_regex(r"[a-zA-Z0-9]{1,12}", fullmatch=True))))
def test_a_package_url_gives_the_channel_folder_mamba_uses_and_the_folder_parses_back(
        scheme, host, port, channel, subdir, dist, ext, token, login):
    netloc = host + (":%d" % port if port else "")
    fn = dist + ext
    plain = "%s://%s/%s/%s/%s" % (scheme, netloc, "/".join(channel), subdir, fn)
    expected = "%s/%s/%s/%s" % (scheme, netloc.replace(":", "_"), "/".join(channel), subdir)
    assert conda_mamba.cache_folder(plain, fn) == expected == mamba_cache_folder(plain)
    # secrets never reach the path: a token and user:password@ give the same folder
    secret = "%s://%s%s%s/%s/%s/%s" % (
        scheme, "%s:%s@" % login if login else "", netloc, "/t/" + token if token else "", "/".join(channel), subdir, fn)
    assert conda_mamba.cache_folder(secret, fn) == expected
    assert conda_mamba.cache_folder(secret) == expected  # without the file name: the last part goes
    assert conda_mamba.split_relpath(expected + "/" + dist) == (expected, dist)
    assert conda_mamba.split_relpath(expected + "/" + fn) == (expected, fn)


@given(name=_dist)
def test_a_flat_name_is_a_place_of_its_own_and_odd_paths_are_none(name):
    assert conda_mamba.split_relpath(name) == ("", name)
    assert conda_mamba.split_relpath("https/host/ch/linux-64/../" + name) is None
    assert conda_mamba.split_relpath("https//ch/linux-64/" + name) is None
    # a channel named like a platform pair (conda-forge) is not a subdir: no package place below it
    assert conda_mamba.split_relpath("https/host/conda-forge/" + name) is None


def test_a_file_url_keeps_its_folders_as_mamba_joins_them():
    folder = conda_mamba.cache_folder("file:///srv/chan/noarch/x-1-0.conda", "x-1-0.conda")
    assert folder == "file//srv/chan/noarch"
    assert conda_mamba.folder_key(folder) == "file/srv/chan/noarch"


# -- facts on the micromamba fixture -----------------------------------------------------------

def place_of(manifest, cache, dist):
    """Where the builder put ``dist`` in ``cache``: its channel folder, or flat."""
    return "/".join(p for p in (manifest.cache(cache).folders.get(dist), dist) if p)


def build(tmp_path, seed=5):
    fsroot = tmp_path / "host"
    manifest = LAYOUTS["micromamba"](fsroot, seed, list(DEFAULT_USERS))
    stale = time.time() - 7200
    for path, cache in manifest.caches.items():
        for name in cache.partial:
            os.utime(str(manifest.real(path) / name), (stale, stale))
    return fsroot, manifest


def test_micromamba_roots_are_found_where_micromamba_looks_and_their_caches_carry_the_tool(tmp_path):
    fsroot, manifest = build(tmp_path)
    facts = in_root(fsroot, gather, host_users(USERS), env=manifest.environment)
    installations = dict((i["root"], i) for i in facts["installations"])
    assert sorted(installations) == sorted(i.root for i in manifest.installations)
    assert set(i["tool"] for i in installations.values()) == {"mamba"}
    assert installations[ALICE]["configs"]["alice"]["pkgs_dirs"] == [ALICE_PKGS, "/home/alice/.mamba/pkgs"]
    caches = dict((c["path"], c) for c in facts["caches"])
    for path, intended in manifest.caches.items():
        cache = caches[path]
        assert cache["tool"] == "mamba"
        assert cache["categories"]["extracted"]["count"] == len(intended.extracted), path
        assert cache["categories"]["tarballs"]["count"] == len(intended.tarballs), path
        assert cache["categories"]["locks"]["count"] == len(intended.locks), path
        assert cache["categories"]["trash"]["count"] == len(intended.tempfiles) + len(intended.trash), path
        assert sorted(p["dist"] for p in cache["unused_packages"]) == intended.orphans, path
        for package in cache["unused_packages"]:
            assert package["path"] == path + "/" + place_of(manifest, path, package["dist"])
    # the metrics label the caches by tool
    sizes = metrics.cache_samples({"conda_cache": facts})[metrics.SIZE]
    assert sorted(line.split('path="')[1].split('"')[0] for line in sizes if 'tool="mamba"' in line) == sorted(
        p for p, c in caches.items() if c["exists"])
    # /srv/mamba is only MAMBA_ROOT_PREFIX's: without it, micromamba (and we) cannot know it
    without = in_root(fsroot, gather, host_users(USERS))
    assert "/srv/mamba" not in [i["root"] for i in without["installations"]]


def _backup_plan(env, dest):
    host = Host.load(host_users(USERS), (), env, tarballs_only=True)
    plan = plan_backup(host.caches, Store(dest, "h1"), host.warnings)
    return sorted(item.path for item in plan.items), list(host.warnings)


def test_a_backup_keeps_flat_tarballs_and_says_it_leaves_channel_folders_out(tmp_path):
    fsroot, manifest = build(tmp_path)
    (fsroot / "srv" / "backup").mkdir()
    items, warnings = in_root(fsroot, _backup_plan, manifest.environment, "/srv/backup")
    flat = [p for p, c in manifest.caches.items() if not c.folders]
    assert items == sorted("%s/%s" % (p, fn) for p in flat for fn in manifest.caches[p].tarballs)
    assert sorted(w.split(":")[0] for w in warnings if "not backed up" in w) == sorted(
        p for p, c in manifest.caches.items() if c.folders)


def test_a_mambarc_moves_the_cache_as_micromamba_reads_it(tmp_path):
    fsroot, manifest = build(tmp_path)
    rc = manifest.real("/home/bob/.mambarc")
    rc.write_text("pkgs_dirs:\n  - ~/mamba-cache\n")
    facts = in_root(fsroot, gather, host_users(USERS), env=manifest.environment)
    bob_root = next(i for i in facts["installations"] if i["root"] == "/home/bob/micromamba")
    assert bob_root["configs"]["bob"]["pkgs_dirs"] == ["/home/bob/mamba-cache"]
    assert bob_root["configs"]["bob"]["sources"] == ["/home/bob/.mambarc"]
    # conda does not read .mambarc: alice's root seen by root keeps mamba's defaults
    assert next(i for i in facts["installations"] if i["root"] == ALICE)["configs"]["root"]["pkgs_dirs"] == [
        ALICE_PKGS, "/root/.mamba/pkgs"]


# -- cleaning ----------------------------------------------------------------------------------

def run_clean(env, check_mode=False, targets=tuple(TARGETS)):
    host = Host.load(host_users(USERS), (), env)
    return clean(host, set(targets), Policy(), (), (), check_mode)


def resolve_all(fsroot, prefix):
    broken = []
    for dirpath, _dirs, files in os.walk(str(fsroot) + prefix):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not os.path.exists(str(fsroot) + os.readlink(path)):
                broken.append(path)
    return broken


def test_clean_removes_channel_folder_orphans_locks_and_mamba_trash_exactly_as_planned(tmp_path):
    fsroot, manifest = build(tmp_path)
    env = manifest.environment
    preview = in_root(fsroot, run_clean, env, check_mode=True)
    assert preview["skipped_caches"] == 0 and preview["removed"] == []
    for path, intended in manifest.caches.items():
        [plan] = [c for c in preview["caches"] if c["path"] == path]
        assert plan["kind"] == "mamba"
        removed = sorted(os.path.relpath(i["path"], path) for i in plan["remove"] if i["category"] == "unused")
        assert removed == sorted(place_of(manifest, path, d) for d in intended.orphans)
        locks = sorted(os.path.relpath(i["path"], path) for i in plan["remove"] if i["category"] == "locks")
        assert locks == intended.locks
    ml = ALICE + "/envs/ml"
    trashed = sorted(os.path.relpath(p, ml) for p in preview["tempfiles"] if p.startswith(ml + "/"))
    assert trashed == manifest.envs[ml].mamba_trash
    real = in_root(fsroot, run_clean, env)
    assert real["plan"] == preview["plan"] and sorted(real["removed"]) == sorted(preview["paths"])
    assert not any(os.path.lexists(str(manifest.real(p))) for p in real["removed"])
    for prefix in manifest.envs:
        assert resolve_all(fsroot, prefix) == [], prefix
    for path, intended in manifest.caches.items():
        for dist in intended.referenced_by:
            assert (manifest.real(path) / place_of(manifest, path, dist) / "info" / "index.json").is_file(), (path, dist)
    again = in_root(fsroot, run_clean, env)
    assert again["changed"] is False and again["paths"] == [] and again["tempfiles"] == []


def test_a_posix_lock_is_invisible_to_flock_but_held_for_us(tmp_path):
    """Why flock alone was not enough: mamba's lock does not stop an flock, so a lock file mamba
    holds looked stale and was removed under it."""
    path = tmp_path / "pkgs.lock"
    with Holder(path):
        fd = os.open(str(path), os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # succeeds: flock does not see it
        finally:
            os.close(fd)
        assert lock_is_held(str(path))
        with pytest.raises(_removal.RemovalError, match="held by another process"):
            with _removal.CacheDir(str(tmp_path), lock=False) as cache:
                cache.remove("pkgs.lock")
        assert path.exists()
    assert not lock_is_held(str(path))


def test_a_cache_mamba_has_locked_is_skipped_and_its_items_locks_keep_them(tmp_path):
    fsroot, manifest = build(tmp_path)
    bob = manifest.cache("/home/bob/.mamba/pkgs")
    orphan = bob.orphans[0]
    tarball = next(fn for fn in bob.tarballs if fn.startswith(orphan))
    item_lock = manifest.real("/home/bob/.mamba/pkgs") / bob.folders[orphan] / (tarball + ".lock")
    with Holder(manifest.real(ALICE_PKGS) / "pkgs.lock"), Holder(item_lock):
        result = in_root(fsroot, run_clean, manifest.environment)
        assert manifest.real(ALICE_PKGS + "/pkgs.lock").exists() and item_lock.exists()
    plans = dict((c["path"], c) for c in result["caches"])
    assert plans[ALICE_PKGS]["skipped"] == "locked: %s/pkgs.lock is held by another process" % ALICE_PKGS
    assert plans[ALICE_PKGS]["remove"] == [] and result["skipped_caches"] == 1
    # alice's cache is untouched; bob's loses everything but the archive being extracted and its lock
    assert all((manifest.real(ALICE_PKGS) / place_of(manifest, ALICE_PKGS, d)).is_dir()
               for d in manifest.cache(ALICE_PKGS).orphans)
    kept = dict((p, g["reason"]) for g in plans["/home/bob/.mamba/pkgs"]["keep"] for p in g["paths"])
    in_host = "/home/bob/.mamba/pkgs/%s/%s" % (bob.folders[orphan], tarball)
    assert kept[in_host] == "busy: %s.lock is held by another process" % in_host
    assert kept[in_host + ".lock"] == "lock is held"
    assert (manifest.real("/home/bob/.mamba/pkgs") / bob.folders[orphan] / tarball).exists()
    assert not any(os.path.lexists(str(manifest.real(p))) for p in result["removed"])
