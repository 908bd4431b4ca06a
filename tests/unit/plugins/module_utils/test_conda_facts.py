# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda_cache_facts logic on real fixture hosts, judged against the builder's intent and `du`."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from condafab import User as FabUser
from condafab.layouts import DEFAULT_USERS, LAYOUTS, ROOT_USER

from ansible_collections.pkgcache.fleet.plugins.module_utils import _diskusage
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import shell_environment
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_facts import gather

from .hostroot import host_users, in_root

USERS = [ROOT_USER] + list(DEFAULT_USERS)


def build(tmp_path, layout, seed=7, **kwargs):
    fsroot = tmp_path / "host"
    manifest = LAYOUTS[layout](fsroot, seed, list(DEFAULT_USERS), **kwargs)
    return fsroot, manifest


def facts_in(fsroot, users=None, **kwargs):
    return in_root(fsroot, gather, host_users(users or USERS), **kwargs)


def du(path, apparent=False):
    args = ["du", "-s", "--block-size=1"] + (["--apparent-size"] if apparent else []) + [str(path)]
    return int(subprocess.check_output(args).split()[0])


def cache_named(facts, path):
    return next(c for c in facts["caches"] if c["path"] == path)


@pytest.mark.parametrize("layout, options", [(name, {}) for name in sorted(LAYOUTS)] + [("single_root", {"urls_txt": False})],
                         ids=sorted(LAYOUTS) + ["single_root-without-urls.txt"])
def test_disk_bytes_match_du_and_unused_matches_the_builders_orphans(tmp_path, layout, options):
    fsroot, manifest = build(tmp_path, layout, **options)
    facts = facts_in(fsroot, env=manifest.environment)
    assert facts["installations"], "no installation discovered"
    for path, intended in manifest.caches.items():
        cache = cache_named(facts, path)
        assert cache["exists"]
        assert cache["disk_bytes"] == du(manifest.real(path)), path
        assert cache["apparent_bytes"] == intended.apparent_bytes, path
        unused = sorted(p["dist"] for p in cache["unused_packages"])
        assert unused == sorted(intended.orphans), path
        assert cache["categories"]["tarballs"]["count"] == len(intended.tarballs)
        assert cache["categories"]["extracted"]["count"] == len(intended.extracted)
        assert cache["categories"]["partial"]["count"] == len(intended.partial)
        assert cache["categories"]["locks"]["count"] == len(intended.locks)
        assert cache["categories"]["logs"]["count"] == len(intended.logs)
        assert cache["categories"]["index_cache"]["count"] == len(intended.index_cache)
        assert cache["writable"] is intended.writable


def test_host_totals_count_shared_inodes_once(tmp_path):
    fsroot, manifest = build(tmp_path, "multi_user")
    facts = facts_in(fsroot)
    reals = [str(manifest.real(p)) for p in manifest.caches]
    assert facts["totals"]["disk_bytes"] == du_many(reals)
    assert facts["totals"]["caches"] == len(manifest.caches)


def du_many(paths):
    out = subprocess.check_output(["du", "-s", "-c", "--block-size=1"] + paths).decode()
    return int(out.strip().splitlines()[-1].split()[0])


def test_softlinked_packages_are_in_use_and_flagged(tmp_path):
    fsroot, manifest = build(tmp_path, "softlinked_env")
    facts = facts_in(fsroot)
    cache = cache_named(facts, "/opt/conda/pkgs")
    intended = manifest.cache("/opt/conda/pkgs")
    assert intended.softlink_only, "layout lost its soft-link-only packages"
    unused = set(p["dist"] for p in cache["unused_packages"])
    flagged = dict((p["dist"], p) for p in cache["kept_but_conda_clean_would_remove"])
    # conda clean -p deletes in-use packages unless some file has st_nlink > 1: the soft-linked
    # env's, and metadata-only ones.
    doomed = [d for d in intended.extracted if d not in intended.orphans and d not in intended.multiply_linked]
    soft_doomed = [d for d in intended.softlink_only if d in doomed]
    assert soft_doomed and intended.metadata_only
    for dist in intended.softlink_only:
        assert dist not in unused
    assert sorted(flagged) == sorted(doomed)
    for dist in soft_doomed:
        assert flagged[dist]["referenced_by"] == ["/opt/conda/envs/linked"]
        assert flagged[dist]["link_types"] == ["softlink"]
    linked = next(e for e in facts["environments"] if e["path"] == "/opt/conda/envs/linked")
    assert set(linked["link_types"]) == {"softlink"}


def test_effective_pkgs_dirs_follow_final_and_environment(tmp_path):
    fsroot, manifest = build(tmp_path, "multi_user")
    facts = facts_in(fsroot)
    inst = next(i for i in facts["installations"] if i["root"] == "/opt/conda")
    for name, user in manifest.users.items():
        if user.expected_pkgs_dirs is not None:
            assert inst["configs"][name]["pkgs_dirs"] == user.expected_pkgs_dirs, name
    assert "/etc/conda/condarc.d/50-caches.yml" in inst["configs"]["alice"]["sources"]

    fsroot, manifest = build(tmp_path / "r", "relocated_pkgs")
    facts = facts_in(fsroot, env=manifest.environment)
    inst = next(i for i in facts["installations"] if i["root"] == "/opt/conda")
    assert inst["configs"]["root"]["pkgs_dirs"] == ["/data/conda-pkgs"]
    assert "$CONDA_PKGS_DIRS" in inst["configs"]["root"]["sources"]

    # A variable the playbook sets to null is unset, not a cache named "None".
    unset = facts_in(fsroot, env=shell_environment(dict(manifest.environment, CONDA_PKGS_DIRS=None)))
    inst = next(i for i in unset["installations"] if i["root"] == "/opt/conda")
    assert "$CONDA_PKGS_DIRS" not in inst["configs"]["root"]["sources"]
    assert not any("None" in path for path in inst["configs"]["root"]["pkgs_dirs"])


def test_every_install_and_registered_env_is_discovered(tmp_path):
    fsroot, manifest = build(tmp_path, "two_installs")
    facts = facts_in(fsroot)
    roots = sorted(i["root"] for i in facts["installations"])
    assert roots == sorted(i.root for i in manifest.installations)
    versions = dict((i["root"], i["conda_version"]) for i in facts["installations"])
    for inst in manifest.installations:
        assert versions[inst.root] == inst.conda_version
    known = sorted(p for p, e in manifest.envs.items() if e.known)
    assert sorted(e["path"] for e in facts["environments"]) == known


def test_reclaimable_bytes_are_what_statvfs_gains(tmp_path):
    """Remove the reported unused packages with rm on a filesystem of their own and compare."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mnt)])
    try:
        fsroot, manifest = LAYOUTS["multi_user"](mnt, 11, list(DEFAULT_USERS)), None
        fsroot = mnt
        facts = facts_in(fsroot)
        cache = cache_named(facts, "/opt/conda/pkgs")
        predicted = cache["categories"]["unused"]["reclaimable_bytes"]
        assert predicted > 0
        before = os.statvfs(str(mnt))
        for package in cache["unused_packages"]:
            shutil.rmtree(str(mnt) + package["path"])
        after = os.statvfs(str(mnt))
        assert (after.f_bfree - before.f_bfree) * after.f_frsize == predicted
    finally:
        subprocess.call(["umount", "-l", str(mnt)])


def snapshot(top):
    """Everything but atimes: names, types, modes, owners, sizes, mtimes, link counts, contents."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            digest = None
            if os.path.islink(path):
                digest = os.readlink(path)
            elif os.path.isfile(path):
                with open(path, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
            state[path] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_nlink, st.st_ino, digest)
        state[dirpath] = os.lstat(dirpath).st_mtime_ns
    return state


def test_facts_change_nothing(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    before = snapshot(fsroot)
    facts_in(fsroot, env_sizes=True)
    assert snapshot(fsroot) == before


def test_bad_input_becomes_warnings_and_corrupt_records_still_protect(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root", malformed=True)
    web = manifest.env("/opt/conda/envs/web")
    victim = web.packages[-1]
    record = manifest.real("/opt/conda/envs/web/conda-meta/%s.json" % victim)
    record.write_text(record.read_text()[:40])  # truncated JSON
    # Only web uses it? Then without the record it would look unused but for its hard links;
    # corrupt records still protect it by name.
    facts = facts_in(fsroot)
    warnings = "\n".join(facts["warnings"])
    assert str(record).replace(str(fsroot), "") in warnings
    assert manifest.malformed_condarc[0] in warnings
    cache = cache_named(facts, "/opt/conda/pkgs")
    assert victim not in [p["dist"] for p in cache["unused_packages"]]


def test_symlinks_out_of_a_cache_are_not_followed_and_loops_are_harmless(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    outside = manifest.real("/srv/big")
    outside.mkdir(parents=True)
    (outside / "blob").write_bytes(b"x" * 1000000)
    pkgs = manifest.real("/opt/conda/pkgs")
    os.symlink("/srv/big", str(pkgs / "looks-like-a-dir"))
    os.symlink("/srv/big", str(pkgs / "cache" / "escape"))
    os.symlink("loop", str(pkgs / "loop"))
    facts = facts_in(fsroot)
    cache = cache_named(facts, "/opt/conda/pkgs")
    assert cache["disk_bytes"] == du(pkgs)
    assert cache["apparent_bytes"] < manifest.cache("/opt/conda/pkgs").apparent_bytes + 1000


def test_users_option_limits_homes(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    facts = facts_in(fsroot, users=[ROOT_USER, FabUser("alice", 1001, 1001, "/home/alice")])
    inst = next(i for i in facts["installations"] if i["root"] == "/opt/conda")
    assert sorted(inst["configs"]) == ["alice", "root"]
    assert json.dumps(facts).count("/home/bob/.conda/pkgs") == 0


@pytest.mark.parametrize("layout", ["multi_user", "two_installs"])
def test_facts_sized_by_parallel_walks_equal_the_sequential_ones(tmp_path, layout, monkeypatch):
    """Big caches are sized by forked helpers; forced on for these small ones, nothing changes,
    not even the order of the warnings an unreadable directory gives."""
    fsroot, manifest = build(tmp_path, layout)
    cache = next(iter(manifest.caches.values()))
    sealed = manifest.real(cache.path) / cache.extracted[0] / "sealed"
    sealed.mkdir()
    os.chmod(str(sealed), 0)
    user = host_users(DEFAULT_USERS[:1])[0]
    sequential = in_root(fsroot, _facts_as, user)
    monkeypatch.setattr(_diskusage, "PARALLEL_MIN_TOPS", 1)
    parallel = in_root(fsroot, _facts_as, user)
    assert any(cache.path + "/" + cache.extracted[0] + "/sealed" in w for w in parallel["warnings"])
    for facts in (sequential, parallel):
        for cache in facts["caches"]:
            cache.pop("filesystem", None)  # free space moves with whatever else the machine writes
    assert parallel == sequential


def _facts_as(user):
    """Facts gathered as an ordinary user, to whom a mode-000 directory is unreadable."""
    os.setgroups([])
    os.setgid(user.gid)
    os.setuid(user.uid)
    return gather([user])
