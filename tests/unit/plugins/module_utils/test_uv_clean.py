"""uv caches cleaned as uv cleans them, on caches the real uv wrote (``condafab.uvcache``).

The oracle is the ``uv`` binary of the pinned ``uv`` package: ``uv cache prune`` runs on a copy of
each cache, and what it leaves must be exactly what our own prune leaves; check mode must list
exactly what the binary then removes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils import uv_clean
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import Identity
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import Target
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_clean import Request, clean
from condafab.uvcache import UV, build_real_uv_cache, copy_cache, run_uv, tree, uv_env

from .test_conda_relocate import tmpfs

UV_DIR = os.path.dirname(UV)
NO_UV = ()  # the module's environment: PATH is then a login's default, which has no uv here
WITH_UV = (("PATH", UV_DIR),)


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory):
    """One real uv cache per test module, plus what an older uv and a killed run leave behind:
    an outdated bucket, a temporary directory and stray files at the top, a dangling link and a
    link into (not to) an archive."""
    root = tmp_path_factory.mktemp("uvreal")
    cache = root / "cache"
    build_real_uv_cache(cache, root / "work")
    copy_cache(cache / "wheels-v8", cache / "wheels-v6")
    (cache / ".tmpAbC123").mkdir()
    (cache / ".tmpAbC123" / "partial").write_bytes(b"x" * 3000)
    (cache / "stray.log").write_text("left by hand\n")
    os.symlink("wheels-v8", cache / "link-to-bucket")
    some = sorted((cache / "wheels-v8").rglob("*-py3-none-any"))[0]
    os.symlink("../../../../archive-v0/gone", some.parent / "dangling")
    archive = sorted(p for p in (cache / "archive-v0").iterdir())[0]
    os.symlink(os.path.relpath(archive / next(iter(os.listdir(archive))), some.parent), some.parent / "inside")
    return cache


def cache_copy(real_cache: Path, tmp_path: Path, name: str = "cache") -> Path:
    return copy_cache(real_cache, tmp_path / name)


def run(tmp_path, cache, env=NO_UV, user=None, check_mode=False, uv="prune"):
    """``clean`` for one user whose uv cache is ``cache``; warnings must not happen."""
    environment = dict(env, UV_CACHE_DIR=str(cache), PIP_CONFIG_FILE=os.devnull)
    warnings = []
    result = clean([user or User("root", 0, 0, str(tmp_path))], environment, Request.from_options(uv=uv),
                   warnings.append, check_mode)
    assert warnings == [], warnings
    return result


def relative(paths, cache):
    return sorted(os.path.relpath(p, cache) for p in paths)


def uv_prune(cache: Path) -> str:
    return run_uv("cache", "prune", "--cache-dir", str(cache), env=uv_env(cache.parent), cwd=cache.parent)


def test_our_prune_leaves_exactly_what_uv_cache_prune_leaves(real_cache, tmp_path):
    theirs, ours = cache_copy(real_cache, tmp_path, "theirs"), cache_copy(real_cache, tmp_path, "ours")
    uv_prune(theirs)
    result = run(tmp_path, ours)
    assert result["errors"] == [] and result["caches"][0]["cleaned_by"] == "pkgcache.fleet"
    assert tree(ours) == tree(theirs)
    gone = set(tree(real_cache)) - set(tree(theirs))
    removed = relative(result["removed"], ours)
    assert {rel for rel in gone if not any(rel.startswith(top + "/") for top in removed)} == set(removed)
    assert set(removed) >= {"wheels-v6", ".tmpAbC123", "stray.log", "link-to-bucket"}
    assert sum(1 for rel in removed if rel.startswith("environments-v2/")) == 1
    assert sum(1 for rel in removed if rel.startswith("archive-v0/")) == 2
    # Pruned caches stay pruned, by either of us.
    assert run(tmp_path, ours)["paths"] == []


def test_check_mode_lists_exactly_what_the_hosts_uv_then_removes(real_cache, tmp_path):
    cache = cache_copy(real_cache, tmp_path)
    before = tree(cache)
    preview = run(tmp_path, cache, WITH_UV, check_mode=True)
    assert tree(cache) == before and preview["removed"] == []
    done = run(tmp_path, cache, WITH_UV)
    assert done["errors"] == [] and done["caches"][0]["cleaned_by"] == UV and done["caches"][0]["left_by_uv"] == []
    assert done["removed"] == preview["paths"] == done["paths"]
    assert not any(os.path.lexists(p) for p in done["removed"])
    assert done["planned_bytes"] == preview["planned_bytes"] > 0
    assert run(tmp_path, cache, WITH_UV)["changed"] is False


def test_through_uv_a_target_takes_the_whole_prune_or_nothing(real_cache, tmp_path):
    cache = cache_copy(real_cache, tmp_path)
    environment = {"UV_CACHE_DIR": str(cache), "PATH": UV_DIR}
    request = Request.from_options(uv="prune", target=Target(max_cache_size=1))
    result = clean([User("root", 0, 0, str(tmp_path))], environment, request, [].append, True)
    assert {item["order"] for item in result["caches"][0]["remove"]} == {1}


def test_uv_cache_clean_goes_through_uv_and_is_refused_without_it(real_cache, tmp_path):
    cache = cache_copy(real_cache, tmp_path)
    before = tree(cache)
    refused = run(tmp_path, cache, NO_UV, uv="clean")
    assert refused["caches"][0]["skipped"].startswith("uv cache clean needs uv on the host for root")
    assert tree(cache) == before
    preview = run(tmp_path, cache, WITH_UV, uv="clean", check_mode=True)
    assert relative(preview["paths"], cache) == sorted(set(os.listdir(real_cache)) - {".lock"})
    done = run(tmp_path, cache, WITH_UV, uv="clean")
    assert done["errors"] == [] and done["removed"] == preview["paths"] and os.listdir(cache) == [".lock"]


def test_buckets_of_a_newer_uv_are_kept_by_our_prune(real_cache, tmp_path):
    cache = cache_copy(real_cache, tmp_path)
    (cache / "wheels-v99" / "entry").mkdir(parents=True)
    result = run(tmp_path, cache)
    assert (cache / "wheels-v99" / "entry").is_dir()
    assert result["caches"][0]["kept"]["bucket of a newer uv than this module knows"] == 1


def test_a_cache_uv_holds_is_skipped(real_cache, tmp_path):
    cache = cache_copy(real_cache, tmp_path)
    before = tree(cache)
    with open(cache / ".lock", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_SH)  # what every running uv holds
        for env in (NO_UV, WITH_UV):
            result = run(tmp_path, cache, env)
            assert result["caches"][0]["skipped"] == "uv's cache lock: %s is held by another process" % (cache / ".lock")
    assert tree(cache) == before and result["changed"] is False


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (chown)")


def install_uv(bin_dir: Path, uid: int) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    binary = bin_dir / "uv"
    shutil.copy2(UV, binary)
    for path in (bin_dir, binary):
        os.chown(path, uid, uid)
    return binary


def alice_with_cache(real_cache: Path, tmp_path: Path):
    home = tmp_path / "alice"
    home.mkdir()
    cache = copy_cache(real_cache, home / ".cache" / "uv")
    for path in [home, *home.rglob("*")]:
        os.lchown(path, 1001, 1001)
    return User("alice", 1001, 1001, str(home)), cache


@pytest.mark.parametrize("with_uv", [False, True], ids=["ours", "uv"])
def test_a_users_cache_is_pruned_as_that_user(real_cache, tmp_path, with_uv):
    need_root()
    os.chmod(tmp_path, 0o755)
    alice, cache = alice_with_cache(real_cache, tmp_path)
    if with_uv:
        install_uv(Path(alice.home) / ".local" / "bin", 1001)
    # Something alice cannot remove (root would): a root-owned cached environment stays, with an error.
    blocked = cache / "environments-v2" / "root-owned"
    blocked.mkdir()
    (blocked / "file").write_text("root's\n")
    environment = {"PIP_CONFIG_FILE": os.devnull}
    warnings = []
    result = clean([alice], environment, Request.from_options(uv="prune"), warnings.append)
    assert warnings == []
    expected = os.path.join(alice.home, ".local/bin/uv") if with_uv else "pkgcache.fleet"
    assert result["caches"][0]["cleaned_by"] == expected
    assert (blocked / "file").exists() and len(result["errors"]) == 1
    assert str(blocked) not in result["removed"]
    assert {os.lstat(p).st_uid for p in cache.rglob("*") if blocked not in (p, p.parent)} == {1001}


def test_a_uv_someone_else_can_replace_is_not_run(tmp_path):
    need_root()
    os.chmod(tmp_path, 0o755)
    root = Identity(0, 0, [0])
    alice = Identity(1001, 1001, [1001])
    theirs = install_uv(tmp_path / "alice-bin", 1001)
    assert uv_clean.find_uv(root, [], {"PATH": str(theirs.parent)}) is None
    assert uv_clean.find_uv(alice, [], {"PATH": str(theirs.parent)}) == str(theirs)
    os.chmod(theirs, 0o775)
    assert uv_clean.find_uv(alice, [], {"PATH": str(theirs.parent)}) is None
    shared = install_uv(tmp_path / "shared", 0)
    os.chmod(shared.parent, 0o777)
    assert uv_clean.find_uv(alice, [], {"PATH": str(shared.parent)}) is None
    os.chmod(shared.parent, 0o755)
    assert uv_clean.find_uv(alice, [], {"PATH": str(shared.parent)}) == str(shared)


@pytest.mark.parametrize("env", [NO_UV, WITH_UV], ids=["ours", "uv"])
def test_freed_bytes_are_the_planned_bytes_on_a_filesystem_of_their_own(tmp_path, env):
    need_root()
    with tmpfs(tmp_path / "fs", size="64m") as mount:
        fs = Path(mount)
        # Built there, so the venvs share inodes with the archives: those bytes stay on disk.
        build_real_uv_cache(fs / "uv", fs / "work")
        result = run(tmp_path, fs / "uv", env)
        assert result["errors"] == [] and result["planned_bytes"] > 0
        assert result["freed_bytes"] == {str(fs): result["planned_bytes"]}
        assert result["caches"][0]["reclaimable_bytes"] < result["caches"][0]["disk_bytes"]
