# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_as: the kernel, not our code, decides what a dropped child may remove.

Real files, a real fork and real credentials (root is needed to drop them); the same checks run
under the oldest supported Python too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils._privdrop import PrivDropError, groups_of, run_as
from interpreters import require_python

from .hostroot import require_root
from .test_oldest_python import LINK, OLDEST

# An account that exists nowhere: the kernel needs only numbers.
UID, GID, GROUPS = 54321, 54321, [54322, 54323]


@pytest.fixture
def shared(request):
    """A world-traversable directory (pytest's own tmp is 0700 to root, which would make every
    dropped access fail for the wrong reason)."""
    require_root()
    top = Path(tempfile.mkdtemp(prefix="privdrop-", dir="/tmp"))
    top.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(str(top)))
    return top


def credentials():
    return [list(os.getresuid()), list(os.getresgid()), sorted(os.getgroups())]


def test_the_child_runs_with_exactly_the_given_credentials_and_the_parent_keeps_root(shared):
    assert run_as(UID, GID, GROUPS, credentials) == [[UID] * 3, [GID] * 3, GROUPS]
    assert os.geteuid() == 0 and os.getegid() == 0


def test_a_dropped_child_cannot_remove_roots_file_in_roots_directory(shared):
    victim = shared / "rootdir" / "important.tar.bz2"
    victim.parent.mkdir(mode=0o755)
    victim.write_text("x")
    with pytest.raises(PrivDropError) as caught:
        run_as(UID, GID, GROUPS, os.unlink, str(victim))
    assert caught.value.errno in (errno.EACCES, errno.EPERM)
    assert "PermissionError" in str(caught.value) and "as uid %d" % UID in str(caught.value)
    assert victim.read_text() == "x"


def test_a_dropped_child_cannot_regain_root(shared):
    with pytest.raises(PrivDropError) as caught:
        run_as(UID, GID, GROUPS, os.setuid, 0)
    assert caught.value.errno == errno.EPERM


def test_a_dropped_child_removes_what_its_user_owns(shared):
    mine = shared / "mine"
    mine.mkdir()
    (mine / "pkg.conda").write_text("y")
    for path in (mine, mine / "pkg.conda"):
        os.chown(str(path), UID, GID)
    assert run_as(UID, GID, GROUPS, os.unlink, str(mine / "pkg.conda")) is None
    assert os.listdir(str(mine)) == []


def test_a_group_member_writes_through_a_supplementary_group_only(shared):
    team = shared / "team"
    team.mkdir()
    os.chown(str(team), 0, GROUPS[1])
    team.chmod(0o770)
    (team / "f").write_text("z")
    assert run_as(UID, GID, GROUPS, os.unlink, str(team / "f")) is None
    (team / "f").write_text("z")
    with pytest.raises(PrivDropError) as caught:
        run_as(UID, GID, [], os.unlink, str(team / "f"))
    assert caught.value.errno == errno.EACCES


def test_a_users_groups_are_those_of_a_login_and_the_child_gets_exactly_them(shared):
    root = pwd.getpwuid(0)
    expected = sorted(set([root.pw_gid] + [g.gr_gid for g in grp.getgrall() if root.pw_name in g.gr_mem]))
    assert groups_of(root.pw_name, root.pw_gid) == expected
    assert run_as(UID, GID, groups_of(root.pw_name, GID), credentials)[2] == groups_of(root.pw_name, GID)


def boom():
    raise ValueError("the function broke")


def killed():
    os.kill(os.getpid(), signal.SIGKILL)


def silent():
    os._exit(0)


def not_json():
    return object()


@pytest.mark.parametrize("func, message", [
    (boom, "ValueError: the function broke"),
    (killed, "killed by signal SIGKILL"),
    (silent, "exited with status 0 without an answer"),
    (not_json, "TypeError: Object of type object is not JSON serializable"),
])
def test_whatever_goes_wrong_in_the_child_is_a_clear_error_in_the_parent(shared, func, message):
    with pytest.raises(PrivDropError) as caught:
        run_as(UID, GID, GROUPS, func)
    assert message in str(caught.value)
    assert os.geteuid() == 0


def test_values_come_back_through_the_pipe_whatever_their_size_and_bytes(shared):
    name = os.fsdecode(b"caf\xff")
    assert run_as(UID, GID, GROUPS, lambda n: [n] * 50000, name) == [name] * 50000


OLDEST_SCRIPT = r"""
import errno, os, sys
from ansible_collections.pkgcache.fleet.plugins.module_utils._privdrop import PrivDropError, groups_of, run_as
top = sys.argv[1]
victim, mine = os.path.join(top, "rootdir", "victim"), os.path.join(top, "mine", "own")
try:
    run_as(54321, 54321, [], os.unlink, victim)
    raise SystemExit("removed root's file")
except PrivDropError as exc:
    assert exc.errno == errno.EACCES, exc
run_as(54321, 54321, [], os.unlink, mine)
assert os.path.exists(victim) and not os.path.exists(mine)
print("ok")
"""


def test_the_same_holds_under_the_oldest_python(shared):
    python = require_python(OLDEST)
    (shared / "rootdir").mkdir(mode=0o755)
    (shared / "rootdir" / "victim").write_text("x")
    (shared / "mine").mkdir()
    (shared / "mine" / "own").write_text("y")
    for path in ("mine", "mine/own"):
        os.chown(str(shared / path), UID, GID)
    done = subprocess.run([python, "-c", OLDEST_SCRIPT, str(shared)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(LINK)), check=False)
    assert (done.returncode, done.stdout.strip()) == (0, "ok"), done.stderr
