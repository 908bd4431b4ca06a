# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who a root run acts for: the authority rule, path controllers, and removal as the owner.

Real trees, real uids (no passwd entry is needed for the kernel to enforce one), real forks.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import (
    ANYONE, ROOT, decide, namer_of, path_controllers)
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import inside
from ansible_collections.pkgcache.fleet.plugins.module_utils._privdrop import PrivDropError, run_as
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import remove_planned
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_clean import Policy, clean
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host

ALICE, BOB = 41001, 41002


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: chown and setuid")


def digest(top: Path):
    """Names, contents and owners of a tree: nothing outside a cache may change."""
    found = {}
    for path in sorted([top, *top.rglob("*")]):
        st_ = os.lstat(path)
        data = path.read_bytes() if path.is_file() and not path.is_symlink() else b""
        found[str(path)] = (st_.st_uid, st_.st_mode, hashlib.sha256(data).hexdigest())
    return found


def test_decide_acts_as_the_owner_only_for_those_who_named_it():
    assert decide(ROOT, [ROOT], {ROOT}) == (ROOT, None)
    assert decide(ALICE, [ALICE], {ROOT, ALICE}) == (ALICE, None)
    assert decide(ALICE, [ROOT], {ROOT, ALICE}) == (ALICE, None)  # the system names a user's directory
    assert decide(ROOT, [ALICE], {ROOT, ALICE})[0] is None  # alice's symlink or config to root's files
    assert decide(ROOT, [ALICE], {ROOT})[1].startswith("owned by root but named only by")
    assert decide(BOB, [ALICE], {ROOT, BOB})[1].startswith("owned by uid %d, named only by" % BOB)
    assert "anyone" in decide(ROOT, [ROOT], {ROOT, ANYONE})[1]
    assert decide(ALICE, [ROOT], {ROOT, ALICE, BOB})[0] is None  # bob can redirect the path


@settings(max_examples=200)
@given(owner=st.sampled_from([ROOT, ALICE, BOB]), namers=st.sets(st.sampled_from([ROOT, ALICE, BOB]), min_size=1),
       controllers=st.sets(st.sampled_from([ROOT, ALICE, BOB, ANYONE])))
def test_decide_never_acts_beyond_the_owner_or_for_a_stranger(owner, namers, controllers):
    uid, why = decide(owner, namers, controllers | {owner})
    assert (uid is None) != (why is None)
    if uid is not None:
        assert uid == owner  # never anyone else's credentials
        assert controllers <= {ROOT, owner}  # nobody else could have steered the path
        assert owner in namers or ROOT in namers


@given(st.lists(st.sampled_from(["a", "b", "ab", ".", ".."]), max_size=6))
def test_inside_agrees_with_the_normalized_path(parts):
    top = "/srv/cache"
    path = os.path.normpath(os.path.join(top, *parts)) if parts else top
    assert inside(path, top) == (os.path.commonpath([path, top]) == top)


def test_path_controllers_name_every_owner_on_the_way(tmp_path):
    need_root()
    (tmp_path / "decoy").mkdir()
    home = tmp_path / "home"
    (home / ".conda").mkdir(parents=True)
    os.symlink(tmp_path / "decoy", home / ".conda" / "pkgs")
    for path in (home, home / ".conda", home / ".conda" / "pkgs"):
        os.lchown(path, ALICE, ALICE)
    real, controllers = path_controllers(str(home / ".conda" / "pkgs"))
    assert real == str(tmp_path / "decoy")
    assert ALICE in controllers and ROOT in controllers
    os.chmod(tmp_path, 0o777)
    assert ANYONE in path_controllers(str(tmp_path / "decoy"))[1]
    os.chmod(tmp_path, 0o1777)  # sticky: only an entry's owner may replace it
    assert ANYONE not in path_controllers(str(tmp_path / "decoy"))[1]
    os.chmod(tmp_path, 0o755)
    assert namer_of(str(home / ".condarc"), [(ALICE, str(home))]) == ALICE
    (tmp_path / "etc.condarc").write_text("pkgs_dirs: []\n")
    assert namer_of(str(tmp_path / "etc.condarc"), [(ALICE, str(home))]) == ROOT


def test_the_kernel_enforces_the_dropped_credentials(tmp_path):
    need_root()
    root_dir = tmp_path / "root-owned"
    root_dir.mkdir()
    (root_dir / "important").write_text("x")
    mine = tmp_path / "alice-owned"
    mine.mkdir()
    (mine / "old.tar.bz2").write_text("x")
    os.chown(mine, ALICE, ALICE)
    os.chown(mine / "old.tar.bz2", ALICE, ALICE)
    done, errors = run_as(ALICE, ALICE, [ALICE], remove_planned, str(root_dir), ["important"], None)
    assert done == [] and len(errors) == 1 and "Permission denied" in errors[0]
    assert (root_dir / "important").exists()
    done, errors = run_as(ALICE, ALICE, [ALICE], remove_planned, str(mine), ["old.tar.bz2"], None)
    assert (list(done), list(errors)) == (["old.tar.bz2"], [])
    assert run_as(ALICE, ALICE, [ALICE], os.getuid) == ALICE
    with pytest.raises(PrivDropError, match="as uid %d" % ALICE):
        run_as(ALICE, ALICE, [ALICE], os.setuid, 0)


def test_a_planned_directory_swapped_before_removal_is_refused(tmp_path):
    need_root()
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "a.tar.bz2").write_text("x")
    st_ = os.stat(cache)
    os.rename(cache, tmp_path / "elsewhere")
    cache.mkdir()
    (cache / "a.tar.bz2").write_text("x")
    done, errors = remove_planned(str(cache), ["a.tar.bz2"], (st_.st_dev, st_.st_ino, st_.st_uid))
    assert done == [] and "not the directory that was planned" in errors[0]
    assert (cache / "a.tar.bz2").exists()


def _installation(tmp_path):
    """Issue 13's reproduction, in a tree: /srv/r is root's installation, /srv/decoy root's files."""
    root = tmp_path / "srv" / "r"
    (root / "conda-meta").mkdir(parents=True)
    (root / "conda-meta" / "history").write_text("")
    (root / "pkgs").mkdir()
    decoy = tmp_path / "srv" / "decoy"
    (decoy / "cache").mkdir(parents=True)
    (decoy / "important.tar.bz2").write_text("x")
    (decoy / "cache" / "secret.json").write_text("s")
    home = tmp_path / "home" / "u1"
    (home / ".conda").mkdir(parents=True)
    return root, decoy, home


def _chown_tree(top: Path, uid):
    for path in [top, *top.rglob("*")]:
        os.lchown(path, uid, uid)


def _clean(tmp_path, root, home, env=None):
    users = [User("root", 0, 0, str(tmp_path / "roothome")), User("u1", ALICE, ALICE, str(home))]
    (tmp_path / "roothome").mkdir(exist_ok=True)
    host = Host.load(users, [str(root)], env)
    return clean(host, {"tarballs", "index_cache"}, Policy(), [str(root)], (), check_mode=False)


@pytest.mark.parametrize("how", ["symlink", "condarc", "environment"])
def test_a_user_cannot_make_root_delete_root_files(tmp_path, how):
    need_root()
    root, decoy, home = _installation(tmp_path)
    env = None
    if how == "symlink":
        os.symlink(decoy, home / ".conda" / "pkgs")
    elif how == "condarc":
        (home / ".condarc").write_text("pkgs_dirs:\n  - %s\n" % decoy)
    else:  # the operator's environment expands ~ into the user's home, where the user has a link
        os.symlink(decoy, home / ".conda" / "pkgs2")
        env = {"CONDA_PKGS_DIRS": "~/.conda/pkgs2"}
    _chown_tree(home, ALICE)
    before = digest(decoy)
    result = _clean(tmp_path, root, home, env)
    assert digest(decoy) == before
    assert not result["removed"] and not result["errors"]
    skipped = [c["skipped"] for c in result["caches"] if os.path.realpath(c["path"]) == str(decoy)]
    assert skipped and skipped[0], result["caches"]


def test_a_users_own_cache_behind_a_symlink_is_cleaned_as_that_user(tmp_path):
    need_root()
    root, _decoy, home = _installation(tmp_path)
    scratch = tmp_path / "scratch" / "u1" / "pkgs"
    scratch.mkdir(parents=True)
    (scratch / "old-1.0-0.tar.bz2").write_text("x")
    os.symlink(scratch, home / ".conda" / "pkgs")
    _chown_tree(home, ALICE)
    _chown_tree(tmp_path / "scratch" / "u1", ALICE)
    result = _clean(tmp_path, root, home)
    assert result["removed"] == [str(home / ".conda" / "pkgs" / "old-1.0-0.tar.bz2")], result
    assert not (scratch / "old-1.0-0.tar.bz2").exists()
    # A file root put in the user's cache stays: the user could not have removed it either.
    (scratch / "rootfile").mkdir()
    (scratch / "rootfile" / "x").write_text("x")
    done, errors = run_as(ALICE, ALICE, [ALICE], remove_planned, str(scratch), ["rootfile"], None)
    assert done == [] and len(errors) == 1 and os.strerror(errno.EACCES) in errors[0], errors
    assert (scratch / "rootfile" / "x").exists()
