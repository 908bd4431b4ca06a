# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one atomic writer (owner, mode and symlinks kept or replaced as asked) and the sweep of
temp files whose writer died, on real files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import sweep_dead_temps, write_atomic


def test_write_atomic_keeps_owner_mode_and_symlink(tmp_path):
    target = tmp_path / "real.condarc"
    target.write_text("old\n")
    os.chmod(str(target), 0o640)
    link = tmp_path / ".condarc"
    os.symlink("real.condarc", str(link))
    before = os.stat(str(target))
    write_atomic(str(link), "new\n", uid=12345, gid=12345)
    after = os.stat(str(target))
    assert os.path.islink(str(link)) and target.read_text() == "new\n"
    assert (after.st_mode & 0o7777, after.st_uid, after.st_gid) == (0o640, before.st_uid, before.st_gid)
    assert after.st_ino != before.st_ino, "replaced by rename, not rewritten in place"
    assert sorted(os.listdir(str(tmp_path))) == [".condarc", "real.condarc"]


def test_write_atomic_gives_a_new_file_the_requested_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    path = tmp_path / "home" / ".condarc"
    write_atomic(str(path), "pkgs_dirs: []\n", uid=1234, gid=2345, mode=0o600)
    st = os.stat(str(path))
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 2345, 0o600)


def test_write_atomic_without_keep_existing_replaces_the_name_itself(tmp_path):
    target = tmp_path / "elsewhere.html"
    target.write_text("theirs\n")
    os.chmod(str(target), 0o600)
    link = tmp_path / "report.html"
    os.symlink(str(target), str(link))
    write_atomic(str(link), "ours\n", keep_existing=False)
    assert not os.path.islink(str(link)) and link.read_text() == "ours\n"
    assert os.stat(str(link)).st_mode & 0o7777 == 0o644
    assert target.read_text() == "theirs\n"
    assert sorted(os.listdir(str(tmp_path))) == ["elsewhere.html", "report.html"]


def test_write_atomic_writes_a_name_as_long_as_a_file_name_may_be(tmp_path):
    for name in ("r" * 255, "\u00e9" * 127):
        write_atomic(str(tmp_path / name), "x", keep_existing=False)
        assert (tmp_path / name).read_text() == "x"
    assert len(os.listdir(str(tmp_path))) == 2


def test_sweep_removes_only_the_temp_files_of_dead_writers(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    dead, alive = child.pid, os.getpid()
    for name in ("h1.%d.1" % dead, "h1.%d.2" % alive, "h2.%d.1" % dead, "h1.x.1"):
        (tmp_path / name).write_text("")
    removed = sweep_dead_temps(str(tmp_path), "h1.")
    assert removed == [str(tmp_path / ("h1.%d.1" % dead))]
    assert sorted(os.listdir(str(tmp_path))) == sorted(["h1.%d.2" % alive, "h2.%d.1" % dead, "h1.x.1"])
