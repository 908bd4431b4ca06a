"""A user must not steer a root run into someone else's files (issue 13, reproductions 1 and 2).

Each test is an attack a user with a login on a shared host can mount with what they control:
their home, their configs, the environment their shell exports.  The decoys are root's files
outside any cache root named; a module run as root (become) over SSH must leave them exactly as
they were (checksums before and after), while it still cleans what it legitimately may.

Removal (and a relocation's move) runs with the credentials of the user whose word named the
cache; the tests marked "legitimate" are the cases that must keep working: a user's own cache
behind a symlink, a user's own cache moved to another disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from decoys import checksums, give, write
from testfleet.fleet import running

ALICE, BOB = (1001, 1001), (1002, 1002)
# What the attacks leave behind, removed before each test so every attack starts from scratch.
PLAYGROUND = ("srv/r", "srv/backup", "srv/decoy", "srv/planted", "srv/envs", "srv/decoypip", "srv/scratch", "home/alice/.conda", "home/alice/.condarc",
              "home/alice/.config/pip", "home/alice/.cache/pip", "home/bob/.conda", "home/bob/.cache/pip")


@pytest.fixture(scope="module")
def host(fleet_state_factory):
    with running(fleet_state_factory("trust"), 1, ("bare",)) as fleet:
        yield fleet, fleet.hosts[0], fleet.root_of(fleet.hosts[0])


@pytest.fixture
def shared(host):
    fleet, name, root = host
    for relative in PLAYGROUND:
        path = root / relative
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.exists():
            shutil.rmtree(str(path))
    return fleet, name, root


def run_leaving(shared, decoy, module, args):
    """Run ``module`` as root over SSH; the tree ``decoy`` must come out with the same checksums."""
    fleet, name, root = shared
    before = checksums(root / decoy)
    result = fleet.run_module(name, module, json.dumps(args), become=True)[name]
    assert checksums(root / decoy) == before, result
    return result


def user_symlink(root, owner, home, link, target):
    """What the user at ``home`` can do alone: a symlink ``link`` (relative to the home) to ``target``."""
    path = root / home / link
    os.makedirs(str(path.parent), exist_ok=True)
    give(path.parent, owner, root / home)
    os.symlink(target, str(path))
    os.lchown(str(path), *owner)


def alices_scratch_cache(root):
    """A cache directory alice owns outside her home, with one stale tarball of hers."""
    tarball = write(root / "srv/scratch/alice/pkgs/numpy-1.0-0.tar.bz2", b"n\n", ALICE)
    give(tarball.parent, ALICE, root / "srv/scratch")
    return tarball


def conda_root_and_decoy(root):
    """Root's installation at /srv/r with one stale tarball of its own, and root's decoy files."""
    write(root / "srv/r/conda-meta/history", b"")
    own = write(root / "srv/r/pkgs/stale-1.0-0.tar.bz2", b"t" * 64)
    write(root / "srv/decoy/important.tar.bz2", b"x\n")
    write(root / "srv/decoy/cache/secret.json", b"s\n")
    return own


def alice_links_her_cache_to_the_decoy(root):
    user_symlink(root, ALICE, "home/alice", ".conda/pkgs", "/srv/decoy")
    return {}


def alice_names_the_decoy_in_her_condarc(root):
    write(root / "home/alice/.condarc", b"pkgs_dirs:\n  - /srv/decoy\n", ALICE)
    return {}


def the_environment_leads_through_alices_link(root):
    # The operator's CONDA_PKGS_DIRS is trusted, but its ~ expands into each user's home, where
    # alice controls what the name leads to.  It replaces pkgs_dirs in every view, root's too.
    user_symlink(root, ALICE, "home/alice", ".conda/pkgs-shared", "/srv/decoy")
    return {"environment": {"CONDA_PKGS_DIRS": "~/.conda/pkgs-shared"}}


@pytest.mark.parametrize("attack", [alice_links_her_cache_to_the_decoy, alice_names_the_decoy_in_her_condarc,
                                    the_environment_leads_through_alices_link])
def test_conda_clean_never_removes_roots_files_a_user_pointed_it_at(shared, attack):
    root = shared[2]
    own = conda_root_and_decoy(root)
    args = dict(attack(root), roots=["/srv/r"])
    result = run_leaving(shared, "srv/decoy", "pkgcache.fleet.conda_clean", args)
    if "environment" not in args:
        assert "/srv/r/pkgs/stale-1.0-0.tar.bz2" in result.get("removed", []), result
        assert not own.exists()


def alice_names_the_pip_decoy_in_her_pip_conf(root):
    conf = write(root / "home/alice/.config/pip/pip.conf", b"[global]\ncache-dir = /srv/decoypip\n", ALICE)
    give(conf.parent, ALICE, root / "home/alice")
    return {}


def alice_links_her_pip_cache_to_the_decoy(root):
    user_symlink(root, ALICE, "home/alice", ".cache/pip", "/srv/decoypip")
    return {}


def the_environment_leads_through_alices_pip_link(root):
    # The operator's PIP_CACHE_DIR is trusted, but its ~ expands into each user's home, where alice
    # controls what the name leads to.  It applies to bob too: his own cache is not his then.
    user_symlink(root, ALICE, "home/alice", ".cache/pip-shared", "/srv/decoypip")
    return {"environment": {"PIP_CACHE_DIR": "~/.cache/pip-shared"}}


@pytest.mark.parametrize("attack", [alice_names_the_pip_decoy_in_her_pip_conf, alice_links_her_pip_cache_to_the_decoy,
                                    the_environment_leads_through_alices_pip_link])
def test_pip_cache_clean_never_removes_roots_files_a_user_pointed_it_at(shared, attack):
    root = shared[2]
    write(root / "srv/decoypip/wheels/ab/cd/important-1.0-py3-none-any.whl", b"w\n")
    write(root / "srv/decoypip/http-v2/a/b/c/d/e/secret", b"h\n")
    bobs = write(root / "home/bob/.cache/pip/http-v2/f/0/body", b"b\n", BOB)
    give(bobs.parent, BOB, root / "home/bob")
    args = dict(attack(root), users=["alice", "bob"], purge=True)
    result = run_leaving(shared, "srv/decoypip", "pkgcache.fleet.pip_cache_clean", args)
    if "environment" not in args:
        assert not bobs.exists(), result


def test_conda_clean_never_removes_one_users_files_another_user_pointed_it_at(shared):
    root = shared[2]
    conda_root_and_decoy(root)
    alices_scratch_cache(root)
    user_symlink(root, BOB, "home/bob", ".conda/pkgs", "/srv/scratch/alice/pkgs")
    run_leaving(shared, "srv/scratch/alice", "pkgcache.fleet.conda_clean", {"roots": ["/srv/r"]})


def test_a_users_own_cache_behind_a_symlink_is_still_cleaned(shared):
    """The legitimate case the attacks must not cost: alice's ~/.conda/pkgs is a symlink to a
    scratch directory she owns; root's clean removes her stale tarball there (as alice, later)."""
    fleet, name, root = shared
    conda_root_and_decoy(root)
    alices = alices_scratch_cache(root)
    user_symlink(root, ALICE, "home/alice", ".conda/pkgs", "/srv/scratch/alice/pkgs")
    result = fleet.run_module(name, "pkgcache.fleet.conda_clean", json.dumps({"roots": ["/srv/r"]}), become=True)[name]
    assert not alices.exists(), result
    assert not (root / "srv/r/pkgs/stale-1.0-0.tar.bz2").exists(), result


def test_one_users_broken_condarc_does_not_switch_cleaning_off(shared):
    """Issue 13, item 7: any user could stop the fleet's conda cleanup by breaking their own
    ~/.condarc.  Now the clean goes on, restricted to what no unknown environment can use."""
    fleet, name, root = shared
    own = conda_root_and_decoy(root)
    write(root / "home/alice/.condarc", b"pkgs_dirs: [unclosed\n  - : :\n", ALICE)
    result = fleet.run_module(name, "pkgcache.fleet.conda_clean", json.dumps({"roots": ["/srv/r"]}), become=True)[name]
    assert not result.get("failed"), result
    assert "alice" in result["restricted"], result
    assert "/srv/r/pkgs/stale-1.0-0.tar.bz2" in result["removed"] and not own.exists()


def relocate_for_alice(shared, decoy, new="/srv/scratch/alice/newpkgs"):
    """Root runs a user-scope relocation of alice's cache (what an admin does to free her home)."""
    args = {"root": "/srv/r", "scope": "user", "user": "alice", "pkgs_dirs": [new], "migrate": True}
    return run_leaving(shared, decoy, "pkgcache.fleet.conda_pkgs_dirs", args)


def test_a_user_scope_relocation_never_moves_roots_files_her_config_names(shared):
    """Alice's ~/.condarc names root's directory as her cache: a migrate for her must not carry
    root's files into a directory she owns, nor remove them (it did both as root)."""
    root = shared[2]
    conda_root_and_decoy(root)
    alice_names_the_decoy_in_her_condarc(root)
    write(root / "srv/scratch/alice/.keep", b"", ALICE)
    give(root / "srv/scratch/alice", ALICE, root / "srv/scratch")
    result = relocate_for_alice(shared, "srv/decoy")
    assert "owned by root but named only by alice" in result["msg"] and not result["changed"], result
    assert not (root / "srv/scratch/alice/newpkgs").exists()
    assert (root / "home/alice/.condarc").read_bytes() == b"pkgs_dirs:\n  - /srv/decoy\n"


ALICES_CONDARC = b"pkgs_dirs:\n  - ~/.conda/pkgs\n"


def alices_home_cache(root, planted_by_root=False):
    """alice's ~/.conda/pkgs, hers and first in her ~/.condarc, with a tarball; optionally a
    directory root put there."""
    write(root / "home/alice/.condarc", ALICES_CONDARC, ALICE)
    tarball = write(root / "home/alice/.conda/pkgs/numpy-1.0-0.tar.bz2", b"n" * 100, ALICE)
    write(root / "home/alice/.conda/pkgs/urls.txt", b"", ALICE)
    give(tarball.parent, ALICE, root / "home/alice")
    write(root / "srv/scratch/alice/.keep", b"", ALICE)
    give(root / "srv/scratch/alice", ALICE, root / "srv/scratch")
    if planted_by_root:
        write(root / "home/alice/.conda/pkgs/rootdir/data", b"r\n")
    return tarball


def test_a_user_scope_relocation_moves_with_her_credentials(shared):
    """The move runs as alice: a directory root owns inside her cache is not hers to move (the
    kernel refuses renaming it), so the move fails and is rolled back; as root it was carried off."""
    root = shared[2]
    conda_root_and_decoy(root)
    tarball = alices_home_cache(root, planted_by_root=True)
    result = relocate_for_alice(shared, "home/alice/.conda/pkgs/rootdir")
    assert "Permission denied" in result["msg"], result
    assert result["config_changed"] is False, result  # changed: the new, empty cache dir stays
    assert tarball.exists() and (root / "home/alice/.conda/pkgs/rootdir/data").exists()
    assert (root / "home/alice/.condarc").read_bytes() == ALICES_CONDARC


def test_legitimate_a_user_scope_relocation_of_her_own_cache_works_and_stays_hers(shared):
    fleet, name, root = shared
    conda_root_and_decoy(root)
    alices_home_cache(root)
    result = relocate_for_alice(shared, "srv/decoy")
    assert not result.get("failed") and result["changed"], result
    moved = root / "srv/scratch/alice/newpkgs/numpy-1.0-0.tar.bz2"
    assert moved.read_bytes() == b"n" * 100 and moved.stat().st_uid == ALICE[0]
    assert (root / "srv/scratch/alice/newpkgs").stat().st_uid == ALICE[0]
    assert (root / "home/alice/.condarc").stat().st_uid == ALICE[0]
    assert not (root / "home/alice/.conda/pkgs").exists()


def backed_up_alices_cache(shared):
    """alice's own cache, backed up by root into a store only root can read, then emptied."""
    fleet, name, root = shared
    conda_root_and_decoy(root)
    tarball = alices_home_cache(root)
    cache = "/home/alice/.conda/pkgs"
    (root / "srv/backup").mkdir()
    args = {"dest": "/srv/backup", "pkgs_dirs": [cache], "host_id": "h"}
    backup = fleet.run_module(name, "pkgcache.fleet.conda_pkgs_backup", json.dumps(args), become=True)[name]
    assert [c["fn"] for c in backup.get("copied", [])] == ["numpy-1.0-0.tar.bz2"], backup
    os.chmod(str(root / "srv/backup"), 0o700)
    tarball.unlink()
    return dict(args, state="restored"), tarball


def test_legitimate_a_restore_into_a_users_cache_runs_as_her(shared):
    """Restored as alice: her file, though the store is root's alone; and a cache she made
    read-only for herself is not written (as root it was)."""
    fleet, name, root = shared
    args, tarball = backed_up_alices_cache(shared)
    os.chmod(str(tarball.parent), 0o500)
    refused = fleet.run_module(name, "pkgcache.fleet.conda_pkgs_backup", json.dumps(args), become=True)[name]
    assert "Permission denied" in refused["msg"] and not tarball.exists(), refused
    os.chmod(str(tarball.parent), 0o755)
    result = fleet.run_module(name, "pkgcache.fleet.conda_pkgs_backup", json.dumps(args), become=True)[name]
    assert [r["fn"] for r in result["restored"]] == ["numpy-1.0-0.tar.bz2"], result
    assert tarball.read_bytes() == b"n" * 100 and tarball.stat().st_uid == ALICE[0]


def test_a_restore_never_writes_where_a_users_symlink_leads(shared):
    """After the backup alice turns her cache into a symlink to root's directory: a restore into
    'her cache' must not write root's directory (it did, as root)."""
    args, _tarball = backed_up_alices_cache(shared)
    root = shared[2]
    shutil.rmtree(str(root / "home/alice/.conda/pkgs"))
    write(root / "srv/decoy/urls.txt", b"")  # root's decoy is a cache of root's own
    alice_links_her_cache_to_the_decoy(root)
    result = run_leaving(shared, "srv/decoy", "pkgcache.fleet.conda_pkgs_backup", args)
    assert "not restoring into /home/alice/.conda/pkgs: reached through a path" in result["msg"], result


def test_a_backup_never_copies_roots_files_a_users_symlink_leads_to(shared):
    """alice's ~/.conda/pkgs leads to root's directory: backing up her cache must not copy
    root's files into the store (which she may be able to read), only warn."""
    fleet, name, root = shared
    conda_root_and_decoy(root)
    for cache in ("srv/r/pkgs", "srv/decoy"):  # both conda-writable caches, both root's
        write(root / cache / "urls.txt", b"")
    alice_links_her_cache_to_the_decoy(root)
    (root / "srv/backup").mkdir()
    args = {"dest": "/srv/backup", "users": ["alice"], "roots": ["/srv/r"], "host_id": "h"}
    result = run_leaving(shared, "srv/decoy", "pkgcache.fleet.conda_pkgs_backup", args)
    copied = [c["fn"] for c in result.get("copied", [])]
    assert copied == ["stale-1.0-0.tar.bz2"], result
    [skipped] = result["skipped_caches"]
    assert skipped["cache"] == "/home/alice/.conda/pkgs" and "reached through a path uid 1001" in skipped["reason"]


def test_a_backup_never_records_roots_files_a_users_environment_links_to(shared):
    """Issue 17: environments are recorded in the manifest.  alice's environment has a record that
    is a symlink to a record-shaped file only root may read, and another environment whose whole
    conda-meta is a link to root's directory: neither reaches the manifest (it did, read as root);
    both environments are recorded as unreadable, and her plain record still is."""
    fleet, name, root = shared
    conda_root_and_decoy(root)
    secret = write(root / "srv/decoy/cache/secret-1.0-0.json", json.dumps(
        {"fn": "secret-1.0-0.conda", "url": "https://secret.invalid/token-s3cr3t/secret-1.0-0.conda"}).encode())
    os.chmod(str(secret), 0o600)
    write(root / "srv/decoy/meta/history", b"")
    shutil.copy2(str(secret), str(root / "srv/decoy/meta/secret-1.0-0.json"))
    os.chmod(str(root / "srv/decoy/meta"), 0o700)
    env = root / "home/alice/.conda/envs/e"
    write(env / "conda-meta/history", b"", ALICE)
    write(env / "conda-meta/own-1.0-0.json", json.dumps({"fn": "own-1.0-0.conda", "url": "https://x.invalid/own-1.0-0.conda"}).encode(), ALICE)
    give(env / "conda-meta", ALICE, root / "home/alice")
    user_symlink(root, ALICE, "home/alice", ".conda/envs/e/conda-meta/secret-1.0-0.json", "/srv/decoy/cache/secret-1.0-0.json")
    linked = root / "home/alice/.conda/envs/linked"
    linked.mkdir()
    give(linked, ALICE, root / "home/alice")
    user_symlink(root, ALICE, "home/alice", ".conda/envs/linked/conda-meta", "/srv/decoy/meta")
    write(root / "home/alice/.conda/environments.txt", b"/home/alice/.conda/envs/e\n/home/alice/.conda/envs/linked\n", ALICE)
    (root / "srv/backup").mkdir()
    args = {"dest": "/srv/backup", "users": ["alice"], "roots": ["/srv/r"], "host_id": "h"}
    result = run_leaving(shared, "srv/decoy", "pkgcache.fleet.conda_pkgs_backup", args)
    recorded = {e["prefix"]: e for e in result["environments"]}
    assert recorded["/home/alice/.conda/envs/e"]["unreadable"] == ["secret-1.0-0"], result
    assert recorded["/home/alice/.conda/envs/e"]["missing"] == ["own-1.0-0.conda"]
    assert recorded["/home/alice/.conda/envs/linked"]["unreadable"] == ["conda-meta"], result
    manifest = (root / result["manifest"].lstrip("/")).read_text()
    assert "own-1.0-0.conda" in manifest and "s3cr3t" not in manifest


def test_a_restore_kit_never_places_a_package_where_a_users_record_subdir_leads(shared):
    """alice's record names ``subdir: /srv/planted`` for a tarball of hers that the backup stored:
    building the restore kit (as root) put her bytes there.  Her environment is rejected instead."""
    fleet, name, root = shared
    conda_root_and_decoy(root)
    alices_home_cache(root)
    env = root / "home/alice/.conda/envs/evil"
    write(env / "conda-meta/history", b"", ALICE)
    record = {"name": "numpy", "version": "1.0", "build": "0", "build_number": 0, "fn": "numpy-1.0-0.tar.bz2",
              "url": "https://x.invalid/c/linux-64/numpy-1.0-0.tar.bz2", "subdir": "/srv/planted", "size": 100,
              "md5": hashlib.md5(b"n" * 100).hexdigest(), "sha256": hashlib.sha256(b"n" * 100).hexdigest()}
    write(env / "conda-meta/numpy-1.0-0.json", json.dumps(record).encode(), ALICE)
    give(env / "conda-meta", ALICE, root / "home/alice")
    write(root / "home/alice/.conda/environments.txt", b"/home/alice/.conda/envs/evil\n", ALICE)
    (root / "srv/backup").mkdir()
    backup = {"dest": "/srv/backup", "users": ["alice"], "roots": ["/srv/r"], "host_id": "h"}
    stored = fleet.run_module(name, "pkgcache.fleet.conda_pkgs_backup", json.dumps(backup), become=True)[name]
    assert [e["complete"] for e in stored["environments"] if e["name"] == "evil"] == [True], stored
    restore = dict(backup, state="restored", environments=["evil"], environments_dir="/srv/envs")
    result = run_leaving(shared, "srv/decoy", "pkgcache.fleet.conda_pkgs_backup", restore)
    assert not os.path.lexists(str(root / "srv/planted")), result
    [evil] = result["environments"]
    assert evil["action"] == "rejected" and "not a channel's: '/srv/planted'" in evil["reason"], result
