"""Why a path cannot be a directory to write in (issue 14, finding 9): a file on the way, a
pseudo-filesystem, a read-only mount; each named before any space is counted.  Real paths: a
file and a read-only tmpfs made here, and this machine's own /sys and /proc."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import (
    directory_problem, existing_ancestor, mount_of)
from ansible_collections.pkgcache.fleet.plugins.module_utils._privdrop import run_as

from .test_conda_relocate import tmpfs


def test_a_file_on_the_way_is_named_as_a_file_not_errno_17(tmp_path):
    (tmp_path / "hostname").write_text("h1\n")
    where = str(tmp_path / "hostname")
    assert directory_problem(where + "/pkgs/more") == "%s exists and is not a directory" % where
    assert directory_problem(where) == "%s exists and is not a directory" % where


def test_a_writable_directory_and_its_missing_children_have_no_problem(tmp_path):
    assert directory_problem(str(tmp_path)) is None
    assert directory_problem(str(tmp_path / "new" / "pkgs")) is None
    assert existing_ancestor(str(tmp_path / "new" / "pkgs")) == str(tmp_path)


def test_sysfs_and_proc_are_pseudo_filesystems_whatever_room_they_report():
    if mount_of("/sys") != ("/sys", "sysfs") or mount_of("/proc") != ("/proc", "proc"):
        pytest.skip("this machine has no sysfs on /sys and proc on /proc")
    assert directory_problem("/sys/pkgs") == "/sys is a pseudo-filesystem (sysfs)"
    assert directory_problem("/sys/kernel/pkgs") == "/sys/kernel is on a pseudo-filesystem (sysfs at /sys)"
    assert directory_problem("/proc/self/pkgs").endswith("is on a pseudo-filesystem (proc at /proc)")


def test_a_read_only_mount_is_named_and_the_mount_table_is_read_with_its_escapes(tmp_path):
    with tmpfs(tmp_path / "read only") as disk:
        assert mount_of(disk + "/pkgs") == (disk, "tmpfs")
        assert directory_problem(disk + "/pkgs") is None
        subprocess.check_call(["mount", "-o", "remount,ro", disk])
        assert directory_problem(disk + "/pkgs") == "%s is on a read-only filesystem" % disk


def test_permissions_are_the_kernels_answer(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    expected = None if os.geteuid() == 0 else "%s is not writable (permissions or immutable)" % locked
    assert directory_problem(str(locked / "pkgs")) == expected
    if os.geteuid() == 0:
        os.chown(str(locked), 4242, 4242)
        assert run_as(4242, 4242, [4242], directory_problem, str(locked / "pkgs")) == \
            "%s is not writable (permissions or immutable)" % locked
