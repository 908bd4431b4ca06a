# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda_pkgs_dirs logic on real fixture trees whose in-record paths are real paths here.

The fixture host is written with condafab at ``/`` under a per-test directory, so PrefixRecords,
symlink targets and configs name the very paths the code reads.  Cross-filesystem cases put the
host on one tmpfs and the new cache on another, so ``statvfs`` deltas are exact; every mount is
unmounted again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import hashlib
import json
import os
import stat
import subprocess

import pytest

from condafab import User as FabUser
from condafab.host import HostBuilder
from condafab.manifest import SOFTLINK

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_relocate_move
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import walk
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_relocate import (
    RelocateError, Request, apply, build_plan, condarc_path)

SYSTEM_CONDARC = "# site settings\nchannels:\n  - conda-forge  # main channel\nauto_activate_base: false\n"


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (tmpfs mounts, chown)")


@contextlib.contextmanager
def tmpfs(path, size="64m"):
    """A filesystem of its own at ``path``, always unmounted."""
    need_root()
    os.makedirs(str(path))
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", str(path)])
    try:
        yield str(path)
    finally:
        subprocess.call(["umount", str(path)]) and subprocess.check_call(["umount", "-l", str(path)])


class Fixture(object):
    """A host under ``base``: /opt/conda with a hard-linked env, optionally a soft-linked one."""

    def __init__(self, base, seed=3, softlinked=True):
        self.base = str(base)
        self.root = self.base + "/opt/conda"
        self.admin = FabUser("root", 0, 0, self.base + "/root")
        self.alice = FabUser("alice", 4242, 4242, self.base + "/home/alice")
        host = HostBuilder("/", seed, "relocate")
        catalog = host.catalog(16, 4)
        inst = host.install(self.root, catalog)
        cache = inst.cache
        cache.add_mix([p for p in catalog.packages if p.dist not in cache.packages], keep=[catalog.git])
        cache.add_debris()
        hard = catalog.pick(host.rng, 0.4, among=cache.extracted_packages, always=[catalog.python, catalog.git])
        envs = [host.env(self.root + "/envs/hard", hard, cache, installation=inst)]
        if softlinked:
            soft = catalog.pick(host.rng, 0.4, among=cache.extracted_packages, always=[catalog.python])
            envs.append(host.env(self.root + "/envs/soft", soft, cache, link_type=SOFTLINK, installation=inst))
        host.condarc(self.root + "/.condarc", SYSTEM_CONDARC)
        for user in (self.admin, self.alice):
            host.user(user, environments=[self.root] + [e.prefix for e in envs])
        self.manifest = host.finish()
        self.old = self.root + "/pkgs"
        self.envs = envs

    def users(self):
        return [User(u.name, u.uid, u.gid, u.home) for u in (self.admin, self.alice)]

    def request(self, pkgs_dirs, scope="system", who=None, **kwargs):
        viewer = [u for u in self.users() if u.name == (who or "root")][0]
        path = condarc_path(scope, self.root, viewer.home)
        return Request(self.root, path, viewer, self.users(), pkgs_dirs, **kwargs)


def run(request):
    plan = build_plan(request)
    result = plan.as_dict()
    apply(plan)
    return result


def snapshot(top):
    """Every entry under ``top``: type, size, inode, link count, symlink target."""
    found = {}

    def note(path, st):
        target = os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
        found[os.path.relpath(path, top)] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_ino, st.st_nlink, target)

    walk(top, on_entry=note)
    return found


def free(path):
    vfs = os.statvfs(path)
    return vfs.f_bfree * vfs.f_frsize


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def assert_env_intact(env_manifest, root):
    """Every file a PrefixRecord lists resolves and has the content paths_data promises."""
    meta = os.path.join(env_manifest.prefix, "conda-meta")
    checked = 0
    for name in os.listdir(meta):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(meta, name)) as handle:
            record = json.load(handle)
        for entry in record["paths_data"]["paths"]:
            path = os.path.join(env_manifest.prefix, entry["_path"])
            assert os.path.exists(path), path
            assert sha256(path) == entry["sha256"], path
            checked += 1
    assert checked


@pytest.fixture
def host(tmp_path):
    return Fixture(tmp_path / "host")


def test_same_filesystem_move_renames_every_inode_and_second_run_changes_nothing(tmp_path):
    fx = Fixture(tmp_path / "host", softlinked=False)
    dest = fx.base + "/data/pkgs"
    before = snapshot(fx.old)
    result = run(fx.request([dest], migrate=True))
    move = result["migration"]
    assert (move["method"], move["old_fs_gain_bytes"], move["copy_bytes"]) == ("rename", 0, 0)
    after = snapshot(dest)
    moved = dict((k, v) for k, v in before.items() if k != "." and not k.startswith("urls"))
    assert dict((k, after[k]) for k in moved) == moved, "same inodes, sizes and links under the new path"
    assert not os.path.lexists(fx.old)
    assert os.path.isfile(dest + "/urls.txt")
    with open(fx.root + "/.condarc") as handle:
        assert handle.read() == SYSTEM_CONDARC + "pkgs_dirs:\n  - %s\n" % dest
    assert result["pkgs_dirs"] == [dest]
    assert_env_intact(fx.envs[0], fx.root)
    again = build_plan(fx.request([dest], migrate=True))
    assert not again.changed and again.move is None


def test_cross_filesystem_copy_frees_exactly_the_reclaimable_bytes_and_keeps_soft_env_working(tmp_path):
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        fx = Fixture(disk1)
        dest = disk2 + "/conda-pkgs"
        source = snapshot(fx.old)
        free1, free2 = free(disk1), free(disk2)
        result = run(fx.request([dest], migrate=True, link_old=True))
        move = result["migration"]
        assert move["method"] == "copy"
        assert free(disk1) - free1 == move["old_fs_gain_bytes"], "statvfs gain equals the promised bytes"
        assert 0 < move["old_fs_gain_bytes"] < move["cache_disk_bytes"], "hard-linked env files stay on disk1"
        assert free2 - free(disk2) >= move["copy_bytes"] - 64 * 1024
        assert os.readlink(fx.old) == dest
        copy = snapshot(dest)
        for rel, (kind, size, _ino, _nlink, target) in source.items():
            if rel == "." or rel.startswith("urls"):
                continue
            assert copy[rel][0::4] == (kind, target) and copy[rel][1] == size, rel
        internal = fx.manifest.caches[fx.old].internal_hardlink
        assert internal, "the fixture must have a package with an internal hard link"
        for dist in internal:
            inodes = {}
            for rel, value in copy.items():
                if rel.startswith(dist + "/") and value[3] > 1:
                    inodes.setdefault(value[2], []).append(rel)
            assert any(len(names) > 1 for names in inodes.values()), "internal hard link kept: " + dist
        for fn in fx.manifest.caches[fx.old].tarballs:
            assert fx.manifest.caches[fx.old].tarball_bytes[fn] == os.path.getsize(os.path.join(dest, fn))
        for env in fx.envs:
            assert_env_intact(env, fx.root)
        assert not [n for n in os.listdir(disk1 + "/opt/conda") if n.startswith("pkgs" + conda_relocate_move.ASIDE)]


def test_drop_leaves_only_tarballs_but_moves_what_soft_links_and_tarball_less_packages_need(tmp_path):
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        fx = Fixture(disk1)
        cache = fx.manifest.caches[fx.old]
        dest = disk2 + "/conda-pkgs"
        result = run(fx.request([dest], migrate=True, link_old=True, extracted="drop"))
        soft = set(fx.envs[1].packages)
        dropped = set(result["migration"]["dropped"])
        both = set(cache.extracted) - set(cache.extracted_only)
        assert dropped == both - soft
        for dist in cache.extracted:
            assert os.path.isdir(os.path.join(dest, dist)) == (dist not in dropped), dist
        for fn in cache.tarballs:
            assert os.path.isfile(os.path.join(dest, fn)), fn
        assert_env_intact(fx.envs[1], fx.root)


def test_soft_linked_env_without_link_old_is_refused_and_nothing_changes(host):
    before_cache, before_rc = snapshot(host.old), open(host.root + "/.condarc").read()
    with pytest.raises(RelocateError, match="soft-linked.*envs/soft.*link_old"):
        run(host.request([host.base + "/data/pkgs"], migrate=True))
    assert snapshot(host.old) == before_cache
    assert open(host.root + "/.condarc").read() == before_rc
    assert not os.path.exists(host.base + "/data/pkgs")


def test_target_filling_up_mid_copy_rolls_everything_back(tmp_path, monkeypatch):
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2", size="512k") as disk2:
        fx = Fixture(disk1)
        dest = disk2 + "/conda-pkgs"
        request = fx.request([dest], migrate=True, link_old=True)
        with pytest.raises(RelocateError, match="needs .* bytes"):
            build_plan(request)
        # Another writer takes the space between the check and the copy: pretend the check passed.
        monkeypatch.setattr(conda_relocate_move, "available_bytes", lambda path: 1 << 40)
        before_cache, before_rc = snapshot(fx.old), open(fx.root + "/.condarc").read()
        with pytest.raises(RelocateError, match="No space left on device"):
            run(request)
        assert snapshot(fx.old) == before_cache
        assert open(fx.root + "/.condarc").read() == before_rc
        assert sorted(os.listdir(dest)) == ["urls", "urls.txt"], "partial copy removed"


@pytest.mark.parametrize("where, message", [
    ("{old}/nested", "inside one another"),
    ("{root}/envs/hard/pkgs", "inside the environment"),
    ("{root}/lib/pkgs", "mix a cache into"),
])
def test_destinations_that_would_break_something_are_refused(host, where, message):
    os.makedirs(host.root + "/lib", exist_ok=True)
    with pytest.raises(RelocateError, match=message):
        build_plan(host.request([where.format(old=host.old, root=host.root)], migrate=True, link_old=True))


def test_a_conda_process_in_the_installation_blocks_the_move(host):
    sleeper = subprocess.Popen(["sleep", "30"], cwd=host.old)
    try:
        with pytest.raises(RelocateError, match="in use by process %d" % sleeper.pid):
            build_plan(host.request([host.base + "/data/pkgs"], migrate=True, link_old=True))
    finally:
        sleeper.kill()
        sleeper.wait()


def test_check_mode_plan_changes_nothing_and_shows_config_diff_and_move(host):
    everything = snapshot(host.base)
    plan = build_plan(host.request([host.base + "/data/pkgs"], migrate=True, link_old=True))
    assert plan.changed and plan.move.method == "rename"
    config_diff, move_diff = plan.diff()
    assert config_diff["before"] == SYSTEM_CONDARC
    assert config_diff["after"].endswith("pkgs_dirs:\n  - %s/data/pkgs\n" % host.base)
    assert "rename %s -> %s/data/pkgs" % (host.old, host.base) in move_diff["after"]
    assert "symlink %s" % host.old in move_diff["after"]
    assert snapshot(host.base) == everything


def test_user_scope_writes_the_users_condarc_and_creates_owned_caches(host):
    need_root()
    mine = "~/fast/pkgs"
    result = run(host.request([mine], scope="user", who="alice", uid=4242, gid=4242, mode=0o750))
    expanded = host.alice.home + "/fast/pkgs"
    assert result["created"] == [expanded]
    assert open(host.alice.home + "/.condarc").read() == "pkgs_dirs:\n  - ~/fast/pkgs\n"
    assert open(host.root + "/.condarc").read() == SYSTEM_CONDARC, "system scope untouched"
    st = os.stat(expanded)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4242, 4242, 0o750)
    assert sorted(os.listdir(expanded)) == ["urls", "urls.txt"]
    assert os.stat(host.alice.home + "/.condarc").st_uid == 4242
    assert result["pkgs_dirs"] == [expanded]
    root_view = build_plan(host.request([host.old]))
    assert root_view.after.config.pkgs_dirs[0] == host.old, "root's view is not alice's"


def test_final_in_a_lower_precedence_file_hides_the_users_file(host):
    with open(host.root + "/.condarc", "a") as handle:
        handle.write("pkgs_dirs:  #!final\n  - /srv/shared-pkgs\n")
    with pytest.raises(RelocateError, match="#!final"):
        build_plan(host.request(["~/p"], scope="user", who="alice"))
    assert not os.path.exists(host.alice.home + "/.condarc")


def test_comments_and_final_in_our_own_file_survive_and_other_sources_are_warned_about(host):
    text = ("# managed by hand\npkgs_dirs:  #!final\n  # primary\n  - %s\n"
            "channels:\n  - conda-forge\n" % host.old)
    with open(host.root + "/.condarc", "w") as handle:
        handle.write(text)
    with open(host.alice.home + "/.condarc", "w") as handle:
        handle.write("pkgs_dirs:\n  - /tmp/alice-pkgs\n")
    new = host.base + "/data/pkgs"
    plan = build_plan(host.request([new, host.old]))
    assert plan.after_text == text.replace("  # primary\n", "  - %s\n  # primary\n" % new)
    alice = build_plan(host.request([new, host.old], who="alice"))
    assert alice.after.config.pkgs_dirs == [new, host.old], "#!final in the system file wins over alice's"
    os.unlink(host.root + "/.condarc")
    alice = build_plan(host.request([new], who="alice"))
    assert alice.after.config.pkgs_dirs[0] == "/tmp/alice-pkgs"
    assert any("/tmp/alice-pkgs" in w and host.alice.home + "/.condarc" in w for w in alice.warnings)


def test_an_installation_a_service_account_owns_is_edited_and_moved_as_that_account(host):
    """``/opt/conda`` owned by a service account: its ``.condarc`` is that account's word, so the
    system-scope change runs as the account; the new file and cache are its own."""
    os.unlink(host.root + "/.condarc")
    for top, dirs, files in os.walk(host.root):
        for name in dirs + files + ["."]:
            os.lchown(os.path.join(top, name), 4343, 4343)
    new = host.base + "/data/pkgs"
    os.makedirs(host.base + "/data")
    os.chown(host.base + "/data", 4343, 4343)
    plan = build_plan(host.request([new], migrate=True, link_old=True))
    assert plan.actor is not None and plan.actor.uid == 4343
    apply(plan)
    assert os.stat(host.root + "/.condarc").st_uid == 4343 and os.stat(new).st_uid == 4343
    assert "pkgs_dirs:\n  - %s\n" % new in open(host.root + "/.condarc").read()
    assert os.readlink(host.old) == new and os.lstat(host.old).st_uid == 4343, "the link is made as the account"
    assert {os.stat(os.path.join(new, n)).st_uid for n in os.listdir(new)} == {4343}


def test_absent_removes_entries_and_a_missing_first_cache_moves_nothing(host):
    new = host.base + "/data/pkgs"
    run(host.request([new, host.old]))
    result = run(host.request([new], state="absent"))
    assert result["pkgs_dirs"] == [host.old]
    assert "pkgs_dirs:\n  - %s\n" % host.old in open(host.root + "/.condarc").read()
    assert not build_plan(host.request([new], state="absent")).changed


def test_refusal_names_the_numbers_when_the_target_is_too_small(tmp_path):
    with tmpfs(tmp_path / "small", size="256k") as small:
        fx = Fixture(tmp_path / "host")
        with pytest.raises(RelocateError) as info:
            build_plan(fx.request([small + "/pkgs"], migrate=True, link_old=True))
        message = str(info.value)
        assert "needs" in message and "available on %s" % small in message
        needed = int(message.split("needs ")[1].split()[0])
        assert needed == walk(fx.old).on_disk - os.lstat(fx.old).st_blocks * 512


def test_a_users_condarc_symlinked_to_a_root_file_is_neither_read_nor_replaced(host):
    need_root()
    secret = host.base + "/secret"
    with open(secret, "w") as handle:
        handle.write("root only\n")
    link = host.alice.home + "/.condarc"
    os.symlink(secret, link)
    os.lchown(link, 4242, 4242)
    with pytest.raises(RelocateError, match="does not own"):
        build_plan(host.request(["~/p"], scope="user", who="alice"))
    assert open(secret).read() == "root only\n"


def test_a_failure_after_the_switch_leaves_a_working_cache_and_says_what_is_left(host, monkeypatch):
    dest = host.base + "/data/pkgs"
    real_remove = conda_relocate_move.CacheDir.remove

    def failing_remove(cache, relpath):
        if relpath == "urls.txt":
            raise conda_relocate_move.RemovalError("%s: injected failure" % relpath)
        return real_remove(cache, relpath)

    monkeypatch.setattr(conda_relocate_move.CacheDir, "remove", failing_remove)
    with pytest.raises(RelocateError) as info:
        run(host.request([dest], migrate=True, link_old=True))
    aside = [n for n in os.listdir(host.root) if n.startswith("pkgs" + conda_relocate_move.ASIDE)]
    assert len(aside) == 1 and os.path.join(host.root, aside[0]) in str(info.value)
    assert "config points at it" in str(info.value)
    assert build_plan(host.request([dest])).before.config.pkgs_dirs == [dest]
    assert os.readlink(host.old) == dest
    for env in host.envs:
        assert_env_intact(env, host.root)


def test_variables_in_entries_expand_for_the_viewer_and_the_file_keeps_them(host):
    result = run(host.request(["$HOME/pkgs"], scope="user", who="alice"))
    assert result["pkgs_dirs"] == [host.alice.home + "/pkgs"]
    assert open(host.alice.home + "/.condarc").read() == "pkgs_dirs:\n  - $HOME/pkgs\n"
    assert not build_plan(host.request(["$HOME/pkgs"], scope="user", who="alice")).changed


def test_a_root_that_is_not_an_installation_is_refused(tmp_path):
    viewer = User("root", 0, 0, str(tmp_path))
    request = Request(str(tmp_path / "nothing"), str(tmp_path / "nothing/.condarc"), viewer, [viewer], ["/x"])
    with pytest.raises(RelocateError, match="not a conda installation"):
        build_plan(request)


def test_a_cache_is_not_created_through_a_users_symlink(host):
    need_root()
    os.makedirs(host.base + "/etc-like")
    link = host.alice.home + "/fast"
    os.symlink(host.base + "/etc-like", link)
    os.lchown(link, 4242, 4242)
    with pytest.raises(RelocateError, match="symlink owned by uid 4242"):
        build_plan(host.request(["~/fast/pkgs"], scope="user", who="alice", uid=4242, gid=4242))
    assert os.listdir(host.base + "/etc-like") == []


def test_a_user_scope_move_of_a_cache_other_users_use_is_refused(host):
    """Issue 14, finding 5: alice's own .condarc must not take root's cache away from root."""
    need_root()
    everything = snapshot(host.base)
    with pytest.raises(RelocateError, match="also the package cache of root .*scope=system, or set migrate=false"):
        build_plan(host.request(["~/fast/pkgs"], scope="user", who="alice", migrate=True))
    assert snapshot(host.base) == everything
    assert build_plan(host.request(["~/fast/pkgs"], scope="user", who="alice")).move is None  # without migrate: fine
