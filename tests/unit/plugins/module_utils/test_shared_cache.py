# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared cache audit and fix on real trees: a tmpfs (POSIX ACLs) and a ramfs (none).

The group is ``daemon`` (its member is the account ``daemon``), the stranger is ``bin``: accounts
every Debian has.  Writes "as a member" run in a child with the member's credentials and the usual
umask 022, as conda run by that user would.
"""

import contextlib
import json
import os
import shutil
import stat
import subprocess

import pytest
from hypothesis import given, strategies as st

from interpreters import require_python

from ansible_collections.pkgcache.fleet.plugins.module_utils import shared_cache
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import Identity, act_as
from ansible_collections.pkgcache.fleet.plugins.module_utils.shared_cache import (
    READ_ONLY, Policy, SharedCacheError, conda_writable, decode_acl, encode_acl, run, writability)

from .test_conda_relocate import tmpfs
from .test_oldest_python import LINK, OLDEST

MEMBER, STRANGER = 1, 2  # daemon (group daemon), bin (not in it)
GROUP = 1


@contextlib.contextmanager
def ramfs(path):
    """A filesystem without extended attributes, so without POSIX ACLs."""
    os.makedirs(str(path))
    subprocess.check_call(["mount", "-t", "ramfs", "ramfs", str(path)])
    try:
        yield str(path)
    finally:
        subprocess.call(["umount", str(path)]) and subprocess.check_call(["umount", "-l", str(path)])


@pytest.fixture
def acl_fs(tmp_path):
    with tmpfs(tmp_path / "acl", size="8m") as mount:
        os.chmod(mount, 0o755)
        yield mount


@pytest.fixture
def plain_fs(tmp_path):
    with ramfs(tmp_path / "plain") as mount:
        yield mount


def member():
    return Identity.of(MEMBER, GROUP)


def as_member(func, *args):
    return act_as(member(), func, *args)


def install_like_conda(cache, name):
    """What conda does for one package, with umask 022: the tarball, the extracted dir with the
    package's own modes (tarfile applies them: 0755 dirs, 0644 files), a line in urls.txt."""
    os.umask(0o022)
    with open(os.path.join(cache, name + ".tar.bz2"), "wb") as handle:
        handle.write(b"tarball of " + name.encode())
    info = os.path.join(cache, name, "info")
    os.makedirs(info)
    with open(os.path.join(info, "index.json"), "w") as handle:
        handle.write('{"name": "%s"}' % name)
    for path, mode in ((os.path.join(info, "index.json"), 0o644), (info, 0o755), (os.path.join(cache, name), 0o755)):
        os.chmod(path, mode)
    with open(os.path.join(cache, "urls.txt"), "a") as handle:
        handle.write("https://example.invalid/%s.tar.bz2\n" % name)
    return True


def new_file_mode(directory):
    """The mode a member's new file gets in ``directory`` (umask 022)."""
    os.umask(0o022)
    path = os.path.join(directory, "made-by-member")
    with open(path, "w"):
        pass
    return os.stat(path).st_mode & 0o777


def tree_state(top):
    found = {}
    for base, dirs, files in os.walk(top):
        for name in dirs + files + ([""] if base == top else []):
            path = os.path.join(base, name)
            st = os.lstat(path)
            found[path] = (st.st_uid, st.st_gid, st.st_mode)
    return found


def getfacl_default(path):
    out = subprocess.check_output(["getfacl", "--omit-header", "--numeric", "--absolute-names", "--default", path], text=True)
    return sorted(line for line in out.splitlines() if line)


@given(st.lists(st.tuples(st.sampled_from([1, 2, 4, 8, 16, 32]), st.integers(0, 7), st.integers(0, 2 ** 32 - 1)),
                max_size=8))
def test_acl_xattr_values_round_trip(entries):
    assert decode_acl(encode_acl(entries)) == sorted(entries, key=lambda e: (e[0], e[2]))


def test_a_value_that_is_no_acl_is_refused():
    with pytest.raises(SharedCacheError):
        decode_acl(b"\x01\x00\x00\x00" + b"\x00" * 8)
    with pytest.raises(SharedCacheError):
        decode_acl(b"\x02\x00\x00\x00" + b"\x00" * 7)


def test_a_missing_cache_is_planned_then_created_exactly_as_planned_and_getfacl_reads_its_acl(acl_fs):
    cache = os.path.join(acl_fs, "pkgs")
    policy = Policy(cache, "daemon")
    planned = run(policy, fix=False)
    assert not os.path.lexists(cache)
    assert planned.created and [c.what for c in planned.changes] == [["missing"], ["marker"], ["marker"]]
    done = run(policy, fix=True)
    assert [c.as_dict() for c in done.changes] == [c.as_dict() for c in planned.changes]
    st_top = os.stat(cache)
    assert (st_top.st_uid, st_top.st_gid, stat.S_IMODE(st_top.st_mode)) == (0, GROUP, 0o2775)
    assert getfacl_default(cache) == ["group::rwx", "other::r-x", "user::rwx"]
    assert run(policy, fix=False).changes == []
    assert writability(policy) == {"daemon": True, "root": True}


def test_members_install_and_the_audit_finds_what_extraction_left_then_the_fix_repairs_exactly_that(acl_fs):
    cache = os.path.join(acl_fs, "pkgs")
    policy = Policy(cache, "daemon")
    run(policy, fix=True)
    assert as_member(install_like_conda, cache, "numpy-1.0-0")
    # The default ACL, not the member's umask, decides: a new file is group-writable.
    assert as_member(new_file_mode, cache) == 0o664
    # A stranger's file slipped in (root put it there for them).
    stray = os.path.join(cache, "stray.json")
    with open(stray, "w") as handle:
        handle.write("{}")
    os.chown(stray, STRANGER, STRANGER)
    audit = run(policy, fix=False)
    found = dict((c.path, c.what) for c in audit.changes)
    assert found == {
        # The package's 0755, applied by chmod, also cleared the setgid bit the directory inherited.
        os.path.join(cache, "numpy-1.0-0"): ["setgid", "mode"],
        os.path.join(cache, "numpy-1.0-0/info"): ["setgid", "mode"],
        os.path.join(cache, "numpy-1.0-0/info/index.json"): ["mode"],
        stray: ["owner", "group"],  # its mode came from the default ACL
    }
    # The tarball, urls.txt and the member's own file are fine: ACL-inherited bits, member-owned.
    before = tree_state(cache)
    fixed = run(policy, fix=True)
    assert [c.as_dict() for c in fixed.changes] == [c.as_dict() for c in audit.changes]
    after = tree_state(cache)
    changed = set(p for p in before if before[p] != after[p])
    assert changed == set(found)
    assert after[stray][:2] == (0, GROUP)  # given to the declared owner, nobody else
    assert after[os.path.join(cache, "numpy-1.0-0.tar.bz2")][0] == MEMBER  # a member keeps what is theirs
    assert run(policy, fix=False).changes == []
    # Now a member may replace what another put there (conda re-extracting a package).
    assert as_member(shutil.rmtree, os.path.join(cache, "numpy-1.0-0")) is None


def test_without_acl_support_the_umask_decides_and_no_acl_drift_is_reported(plain_fs):
    cache = os.path.join(plain_fs, "pkgs")
    policy = Policy(cache, "daemon")
    done = run(policy, fix=True)
    assert done.acl_supported is False
    assert "default_acl" not in done.counts() and run(policy, fix=False).changes == []
    assert as_member(new_file_mode, cache) == 0o644
    with pytest.raises(SharedCacheError, match="does not support POSIX ACLs"):
        run(Policy(cache, "daemon", acl="required"), fix=False)


def test_read_only_cache_is_not_conda_writable_for_members_and_group_write_is_drift(acl_fs):
    cache = os.path.join(acl_fs, "pkgs")
    run(Policy(cache, "daemon"), fix=True)
    as_member(install_like_conda, cache, "scipy-1.0-0")
    policy = Policy(cache, "daemon", access=READ_ONLY)
    audit = run(policy, fix=False)
    member_file = os.path.join(cache, "scipy-1.0-0.tar.bz2")
    by_path = dict((c.path, c) for c in audit.changes)
    assert by_path[member_file].what == ["owner", "mode"]  # daemon is not the owner; 0664 lets the group write
    assert by_path[os.path.join(cache, "urls.txt")].what == ["mode"]
    assert by_path[cache].what == ["mode", "default_acl"]
    assert as_member(conda_writable, cache) is True
    run(policy, fix=True)
    assert run(policy, fix=False).changes == []
    assert writability(policy) == {"daemon": False, "root": True}
    assert os.stat(member_file).st_uid == 0 and stat.S_IMODE(os.stat(member_file).st_mode) == 0o644
    assert getfacl_default(cache) == ["group::r-x", "other::r-x", "user::rwx"]


def test_symlinks_are_never_followed_or_changed(acl_fs, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret"
    secret.write_text("s")
    os.chmod(str(secret), 0o600)
    cache = os.path.join(acl_fs, "pkgs")
    os.makedirs(os.path.join(cache, "pkg-1-0"))
    os.symlink(str(outside), os.path.join(cache, "pkg-1-0", "lib"))
    os.symlink(str(secret), os.path.join(cache, "urls.txt"))
    with open(os.path.join(cache, "urls"), "w"):
        pass
    before = tree_state(str(outside))
    policy = Policy(cache, "daemon")
    audit = run(policy, fix=True)
    assert tree_state(str(outside)) == before
    broken = [c for c in audit.changes if not c.fixable]
    assert [(c.path, c.what) for c in broken] == [(os.path.join(cache, "urls.txt"), ["marker"])]
    assert "symlink" in broken[0].as_dict()["why"] and broken[0].as_dict()["after"] is None
    assert os.path.islink(os.path.join(cache, "urls.txt"))
    link = os.path.join(acl_fs, "via-link")
    os.symlink(cache, link)
    with pytest.raises(SharedCacheError, match="symlink"):
        run(Policy(link, "daemon"), fix=False)


def test_unknown_group_or_owner_and_a_relative_path_are_refused(acl_fs):
    with pytest.raises(SharedCacheError, match="unknown group: no-such-group"):
        Policy(os.path.join(acl_fs, "pkgs"), "no-such-group")
    with pytest.raises(SharedCacheError, match="unknown owner: no-such-user"):
        Policy(os.path.join(acl_fs, "pkgs"), "daemon", owner="no-such-user")
    with pytest.raises(SharedCacheError, match="absolute"):
        Policy("pkgs", "daemon")
    with pytest.raises(SharedCacheError, match="parent directory does not exist"):
        run(Policy(os.path.join(acl_fs, "no/pkgs"), "daemon"), fix=True)
    assert shared_cache.conda_writable(os.path.join(acl_fs, "nothing")) is None


def fix_as_caller(cache):
    audit = run(Policy(cache, "daemon"), fix=True)
    return [len(audit.changes), audit.failed]


def test_a_fix_the_kernel_refuses_is_reported_and_the_rest_still_done(acl_fs):
    cache = os.path.join(acl_fs, "pkgs")
    run(Policy(cache, "daemon"), fix=True)
    as_member(install_like_conda, cache, "numpy-1.0-0")
    roots = os.path.join(cache, "roots.json")
    with open(roots, "w"):
        pass
    os.chmod(roots, 0o644)
    drifted, failed = as_member(fix_as_caller, cache)
    assert drifted == 4 and failed == ["%s: Operation not permitted" % roots]
    assert stat.S_IMODE(os.stat(os.path.join(cache, "numpy-1.0-0/info")).st_mode) == 0o2775  # the member's own


OLDEST_RUN = r"""
import json, sys
from ansible_collections.pkgcache.fleet.plugins.module_utils import shared_cache
policy = shared_cache.Policy(sys.argv[1], "daemon")
audit = shared_cache.run(policy, fix=True)
print(json.dumps([[c.as_dict() for c in audit.changes], audit.failed, shared_cache.writability(policy)]))
"""


def test_the_oldest_supported_python_fixes_the_same_drift(tmp_path):
    python = require_python(OLDEST)
    with tmpfs(tmp_path / "a", size="4m") as first, tmpfs(tmp_path / "b", size="4m") as second:
        for mount in (first, second):
            os.makedirs(os.path.join(mount, "pkgs/numpy-1.0-0/info"))
            os.chown(os.path.join(mount, "pkgs/numpy-1.0-0"), STRANGER, STRANGER)
        here = run(Policy(os.path.join(first, "pkgs"), "daemon"), fix=True)
        assert len(here.changes) == 5  # the stranger's dir, its info/, the top, urls.txt, urls
        out = subprocess.check_output([python, "-c", OLDEST_RUN, os.path.join(second, "pkgs")], text=True,
                                      env=dict(os.environ, PYTHONPATH=str(LINK)))
        changes, failed, writable = json.loads(out)
        assert [dict(c, path=c["path"].replace(second, first)) for c in changes] == [c.as_dict() for c in here.changes]
        assert failed == [] and writable == {"daemon": True, "root": True}
        assert run(Policy(os.path.join(second, "pkgs"), "daemon"), fix=False).changes == []
