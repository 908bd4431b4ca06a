"""pip_clean on real pip and uv caches: pip's own purge/remove as the oracle, ages set by the
test, symlinks out of a user's cache, exact freed bytes on a tmpfs of its own (uv's own rules:
test_uv_clean).

The pip of this venv is run on a ``cp -a`` copy of every fixture cache; what it leaves must be
exactly what ``pip_clean`` leaves.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import OptionError as PolicyError
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import select_users
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_clean import Request, clean
from condafab.pipcache import build_pip_cache, snapshot
from condafab.uvcache import build_real_uv_cache, real_uv_cache

NOW = 1_750_000_000
DAY = 86400
OLD = NOW - 100 * DAY
YOUNG = NOW - DAY


def run(tmp_path, pip=None, uv_dir=None, user=None, check_mode=False, **options):
    """``clean`` for one user whose caches are ``pip``/``uv``; warnings must not happen."""
    env = {"PIP_CONFIG_FILE": os.devnull}
    env.update({"PIP_CACHE_DIR": str(pip)} if pip else {"PIP_CACHE_DIR": str(tmp_path / "no-pip-cache")})
    env.update({"UV_CACHE_DIR": str(uv_dir)} if uv_dir else {"UV_CACHE_DIR": str(tmp_path / "no-uv-cache")})
    warnings = []
    result = clean([user or User("root", 0, 0, str(tmp_path))], env, Request.from_options(now=NOW, **options),
                   warnings.append, check_mode)
    assert warnings == [] and result["errors"] == [], (warnings, result["errors"])
    return result


def tree(root: Path) -> dict:
    """Relative path -> file bytes, link target or ``dir``: what a cache holds, not where it is."""
    state = {}
    for path in sorted(Path(root).rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            state[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            state[rel] = "dir"
        else:
            state[rel] = path.read_bytes()
    return state


def pip_cache(cache: Path, *argv: str) -> None:
    env = dict(os.environ, PIP_CONFIG_FILE=os.devnull)
    subprocess.run([sys.executable, "-m", "pip", "cache", *argv, "--cache-dir", str(cache)], env=env,
                   check=True, capture_output=True)


def set_mtimes(root: Path, when: int) -> None:
    for path in [root, *Path(root).rglob("*")]:
        os.utime(path, (when, when), follow_symlinks=False)


def wheel_files(cache: Path) -> list:
    """The cached wheels pip knows as such (a name with a version)."""
    return sorted(p for p in (cache / "wheels").rglob("*.whl") if "-" in p.name)


@pytest.fixture
def pip_tree(tmp_path):
    """A pip cache with pip's odd corners: the legacy ``selfcheck.json``, a key directory holding
    only ``origin.json`` (its wheel gone), an empty fan-out directory and a wheel whose name has
    no ``-`` (pip's patterns never select it)."""
    cache = tmp_path / "pip"
    build_pip_cache(cache, seed=7, http_entries=14, legacy_http_entries=3, wheels=6, now=NOW)
    (cache / "selfcheck.json").write_text("{}")
    orphan = cache / "wheels/00/11/22/orphan"
    orphan.mkdir(parents=True)
    (orphan / "origin.json").write_text("{}")
    (cache / "http-v2/0/0/0").mkdir(parents=True)
    odd = cache / "wheels/33/44/55/odd"
    odd.mkdir(parents=True)
    (odd / "oddwheel.whl").write_bytes(b"PK")
    return cache


def pip_copy(cache: Path) -> Path:
    copy = cache.with_name(cache.name + "-pip")
    subprocess.run(["cp", "-a", str(cache), str(copy)], check=True)
    return copy


def test_purge_leaves_exactly_what_pip_cache_purge_leaves_and_keeps_selfcheck(tmp_path, pip_tree):
    oracle = pip_copy(pip_tree)
    pip_cache(oracle, "purge")
    result = run(tmp_path, pip=pip_tree, purge=True)
    assert result["changed"] is True
    assert tree(pip_tree) == tree(oracle)
    assert any(rel.startswith("selfcheck/") for rel in tree(pip_tree))
    assert "wheels/33/44/55/odd/oddwheel.whl" in tree(pip_tree)
    assert not (pip_tree / "http-v2").exists() and not (pip_tree / "selfcheck.json").exists()

    result = run(tmp_path, pip=pip_tree, purge=True, include_selfcheck=True)
    assert [Path(p).name for p in result["removed"]] == ["selfcheck"]


@pytest.mark.parametrize("how", ["name", "prefix", "name-version", "glob", "star", "case"])
def test_patterns_remove_what_pip_cache_remove_removes(tmp_path, pip_tree, how):
    first, second = (w.name.split("-") for w in wheel_files(pip_tree)[:2])
    patterns = {
        "name": [first[0]],
        "prefix": [first[0][:3]],  # a name, not a prefix: pip appends -*.whl
        "name-version": ["%s-%s" % (second[0], second[1])],
        "glob": ["%s*" % first[0][:3], "*-%s-*" % second[1]],
        "star": ["*"],
        "case": [first[0].upper()],
    }[how]
    oracle = pip_copy(pip_tree)
    for pattern in patterns:
        pip_cache(oracle, "remove", pattern)
    before = tree(pip_tree)
    result = run(tmp_path, pip=pip_tree, patterns=patterns)
    assert tree(pip_tree) == tree(oracle)
    if how in ("case", "prefix"):
        # Case-sensitive on Linux, and a name is a whole name: only the tidying happened.
        assert not any(p.endswith(".whl") for p in result["removed"])
    else:
        assert len(before) > len(tree(pip_tree))
        assert any(".whl" in key for key in set(before) - set(tree(pip_tree)))


def http_entries(cache: Path) -> list:
    """``[[metadata, body]]`` or ``[[file]]`` per HTTP response in the cache, found by name."""
    entries = []
    for part in ("http-v2", "http"):
        for path in sorted((cache / part).rglob("*")):
            if path.is_file() and not path.name.endswith(".body"):
                body = path.with_name(path.name + ".body")
                entries.append([path, body] if body.exists() else [path])
    return entries


def test_min_age_removes_old_entries_whole_and_keeps_young_ones_with_their_parts(tmp_path, pip_tree):
    set_mtimes(pip_tree, OLD)
    entries = http_entries(pip_tree)
    pairs = [e for e in entries if len(e) == 2]
    young_meta, young_body = pairs[0], pairs[1]
    os.utime(young_meta[0], (YOUNG, YOUNG))  # the metadata refreshed: the pair stays
    os.utime(young_body[1], (YOUNG, YOUNG))  # only the body is new: the pair stays too
    young_wheel = wheel_files(pip_tree)[0]
    os.utime(young_wheel, (YOUNG, YOUNG))
    kept = {p for e in (young_meta, young_body) for p in e} | {young_wheel, young_wheel.with_name("origin.json")}
    old = [p for e in entries if e not in (young_meta, young_body) for p in e]
    old += [w for w in wheel_files(pip_tree) if w != young_wheel]

    preview = run(tmp_path, pip=pip_tree, min_age="30d", check_mode=True)
    result = run(tmp_path, pip=pip_tree, min_age="30d")
    assert preview["paths"] == result["removed"]
    assert all(p.exists() for p in kept)
    assert not [p for p in old if p.exists()]
    assert "wheels/33/44/55/odd/oddwheel.whl" in tree(pip_tree)  # not a wheel to pip: never aged
    plan = result["caches"][0]
    assert plan["kept"] == {"newer than 30d": 3}  # two HTTP responses and a wheel
    assert {i["reason"] for i in plan["remove"]} <= {"older than 30d", "left without files", "left without wheels",
                                                     "legacy state file pip removes"}
    # Nothing old is left but the selfcheck state (never pruned by age) and empty-free structure.
    leftovers = [rel for rel, content in tree(pip_tree).items() if content != "dir"]
    assert all(rel.startswith("selfcheck/") or pip_tree / rel in kept or rel.endswith("oddwheel.whl") for rel in leftovers)


def test_a_second_run_changes_nothing_and_check_mode_plans_exactly_the_real_removal(tmp_path, pip_tree):
    uv = real_uv_cache(tmp_path / "uv")
    options = dict(purge=True, uv="prune")
    before = snapshot(tmp_path)
    preview = run(tmp_path, pip=pip_tree, uv_dir=uv, check_mode=True, **options)
    assert snapshot(tmp_path) == before
    assert preview["removed"] == [] and preview["freed_bytes"] == {} and preview["changed"] is True
    done = run(tmp_path, pip=pip_tree, uv_dir=uv, **options)
    assert done["removed"] == preview["paths"] == done["paths"]
    assert done["planned_bytes"] == preview["planned_bytes"] > 0
    again = run(tmp_path, pip=pip_tree, uv_dir=uv, **options)
    assert (again["changed"], again["paths"]) == (False, [])


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (chown, tmpfs mounts)")


def test_symlinks_never_lead_removal_outside_and_ownership_is_kept(tmp_path, pip_tree):
    need_root()
    etc = tmp_path / "fake-etc"
    (etc / "sub").mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (etc / "sub" / "shadow").write_text("secret\n")
    (etc / "evil-1.0-py3-none-any.whl").write_bytes(b"PK")
    os.symlink(etc, pip_tree / "http-v2" / "escape")
    os.symlink(etc / "evil-1.0-py3-none-any.whl", pip_tree / "wheels" / "evil-1.0-py3-none-any.whl")
    os.symlink(etc / "sub", pip_tree / "wheels" / "00" / "sub")
    uv = real_uv_cache(tmp_path / "uv")
    os.symlink(etc, uv / "archive-v0" / "escape")
    os.symlink(etc, uv / "environments-v2" / "escape")
    for root in (pip_tree, uv):
        set_mtimes(root, OLD)
        for path in [root, *root.rglob("*")]:
            os.lchown(path, 1001, 1001)
    outside = snapshot(etc)
    alice = User("alice", 1001, 1001, str(tmp_path))
    result = run(tmp_path, pip=pip_tree, uv_dir=uv, user=alice, purge=True, uv="prune")
    assert snapshot(etc) == outside
    assert not os.path.lexists(pip_tree / "http-v2") and not os.path.lexists(uv / "archive-v0" / "escape")
    assert str(uv / "environments-v2") + "/escape" in result["removed"]
    for root in (pip_tree, uv):
        assert {(os.lstat(p).st_uid, os.lstat(p).st_gid) for p in [root, *root.rglob("*")]} == {(1001, 1001)}
        assert not (root / ".trash").exists()

    # A user's cache path leading to another account's directory is not cleaned for them.
    os.chown(pip_tree, 2002, 2002)
    wheels_before = tree(pip_tree)
    result = run(tmp_path, pip=pip_tree, user=alice, patterns=["*"])
    assert result["caches"][0]["skipped"] == "owned by uid 2002, neither root nor a user of it (alice)"
    assert tree(pip_tree) == wheels_before


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "32m"):
    """A filesystem of its own at ``path``, always unmounted."""
    need_root()
    path.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "pipclean-test", str(path)], check=True)
    try:
        yield path
    finally:
        if subprocess.call(["umount", str(path)]):
            subprocess.check_call(["umount", "-l", str(path)])


def test_freed_bytes_equal_the_predicted_reclaimable_bytes_on_a_tmpfs(tmp_path):
    with tmpfs(tmp_path / "fs") as fs:
        pip = fs / "pip"
        build_pip_cache(pip, seed=5, http_entries=30, wheels=8, now=NOW)
        # uv hard-links archive files into venvs: those bytes stay on disk when the archive goes.
        uv = fs / "uv"
        build_real_uv_cache(uv, fs / "work")
        result = run(tmp_path, pip=pip, uv_dir=uv, purge=True, uv="prune")
        assert result["freed_bytes"] == {str(fs): result["planned_bytes"]}
        plans = dict((c["tool"], c) for c in result["caches"])
        assert plans["uv"]["reclaimable_bytes"] < plans["uv"]["disk_bytes"]
        assert result["planned_bytes"] == plans["pip"]["reclaimable_bytes"] + plans["uv"]["reclaimable_bytes"] > 0


@pytest.mark.parametrize("options, message", [
    (dict(purge=True, patterns=["numpy"]), "purge and patterns cannot be combined"),
    (dict(purge=True, min_age="7d"), "purge and min_age cannot be combined"),
    (dict(patterns=["numpy"], min_age="7d"), "patterns and min_age cannot be combined"),
    (dict(), "nothing to do"),
    (dict(patterns=["numpy"], include_selfcheck=True), "include_selfcheck only applies to purge"),
    (dict(min_age="7 days"), "min_age: '7 days' is not a duration"),
    (dict(uv="purge"), "uv=purge is not one of prune, clean"),
    (dict(patterns=["wheels/numpy"]), "is not a wheel file name glob"),
    (dict(patterns=[""]), "is not a wheel file name glob"),
])
def test_bad_requests_are_refused_before_anything_is_read(options, message):
    with pytest.raises(PolicyError, match=message):
        Request.from_options(**options)


def test_zero_ages_are_allowed_and_unknown_users_are_refused():
    assert Request.from_options(min_age="0", uv="prune").min_age == 0
    with pytest.raises(PolicyError, match="unknown user.*nobody-by-that-name"):
        select_users(["root", "nobody-by-that-name"])
    assert [u.name for u in select_users(["root"])] == ["root"]
