"""conda_pkgs_dirs refuses a destination that cannot hold a cache, saying why in words (issue 14,
finding 9): a file where a directory is needed used to fail with ``[Errno 17] File exists``, and
sysfs with "0 B available on /sys".  Check mode fails as the real run does, and nothing changes."""

from __future__ import annotations

import os

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import mount_of

from ..module_utils.test_conda_relocate import Fixture, snapshot, tmpfs
from .test_conda_pkgs_dirs import check_then_real


def test_a_file_on_the_destination_path_is_named(tmp_path):
    with tmpfs(tmp_path / "disk1") as disk1, tmpfs(tmp_path / "disk2") as disk2:
        fx = Fixture(disk1, softlinked=False)
        hostname = disk2 + "/hostname"
        with open(hostname, "w") as out:
            out.write("h1\n")
        before = snapshot(disk1)
        message = check_then_real(tmp_path, {"root": fx.root, "pkgs_dirs": [hostname + "/pkgs"], "migrate": True})
        assert message.startswith(hostname + "/pkgs: cannot move the cache there, ") and hostname in message
        assert "not a directory" in message and "Errno" not in message, message
        assert snapshot(disk1) == before and sorted(os.listdir(disk2)) == ["hostname"]


def test_sysfs_is_named_before_its_room_is_counted(tmp_path):
    if mount_of("/sys") != ("/sys", "sysfs"):
        pytest.skip("no sysfs on /sys here")
    with tmpfs(tmp_path / "disk1") as disk1:
        fx = Fixture(disk1, softlinked=False)
        before = snapshot(disk1)
        message = check_then_real(tmp_path, {"root": fx.root, "pkgs_dirs": ["/sys/pkgs"], "migrate": True})
        assert message.startswith("/sys/pkgs: cannot move the cache there, ") and "sysfs" in message, message
        assert "available" not in message
        assert snapshot(disk1) == before and not os.path.lexists("/sys/pkgs")
