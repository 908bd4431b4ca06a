"""A relocation accounts for every cache it leaves behind (issue 14, finding 5).

A system-scope change of ``pkgs_dirs`` takes each user's default ``~/.conda/pkgs`` out of their
conda's view: what is in it stays on disk, invisible to conda, to facts and to cleaning.  The
result, the diff and the warnings must name each such cache with its size and its users.
"""

from __future__ import annotations

import os
import shutil

import pytest

from decoys import give, write
from test_conda_pkgs_dirs import call
from testfleet.fleet import running
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import human_bytes

ALICE, BOB = (1001, 1001), (1002, 1002)


@pytest.fixture(scope="module")
def host(fleet_state_factory):
    with running(fleet_state_factory("leftbehind"), 1, ("bare",)) as fleet:
        yield fleet, fleet.hosts[0], fleet.root_of(fleet.hosts[0])


def users_caches(root):
    """root's installation at /srv/r and two users' default caches: alice's with 3000 bytes of
    tarball, bob's with only the markers (nothing to strand)."""
    for relative in ("srv/r", "srv/new", "home/alice/.conda", "home/bob/.conda"):
        shutil.rmtree(str(root / relative), ignore_errors=True)
    write(root / "srv/r/conda-meta/history", b"")
    write(root / "srv/r/pkgs/urls.txt", b"")
    tarball = write(root / "home/alice/.conda/pkgs/numpy-1.0-0.tar.bz2", b"n" * 3000, ALICE)
    give(tarball.parent, ALICE, root / "home/alice")
    marker = write(root / "home/bob/.conda/pkgs/urls.txt", b"", BOB)
    give(marker.parent, BOB, root / "home/bob")


@pytest.mark.parametrize("check", [True, False])
def test_a_system_scope_move_lists_the_users_caches_it_leaves_behind(host, check, tmp_path):
    fleet, name, root = host
    users_caches(root)
    args = {"root": "/srv/r", "pkgs_dirs": ["/srv/new/pkgs"], "migrate": True}
    result = call(fleet, name, args, tmp_path, check=check, diff=True)
    assert not result.get("failed"), result
    [entry] = result["left_behind"]
    assert entry["path"] == "/home/alice/.conda/pkgs" and entry["users"] == ["alice"], result
    cache = root / "home/alice/.conda/pkgs"
    on_disk = sum(os.lstat(str(p)).st_blocks * 512 for p in (cache, cache / "numpy-1.0-0.tar.bz2"))
    assert entry["disk_bytes"] == on_disk  # the directory and its one tarball, as du counts them
    plan = result["diff"][1]["after"]
    size = human_bytes(on_disk)
    assert "left behind: /home/alice/.conda/pkgs (%s, used by alice)" % size in plan, plan
    assert "%s 1 cache(s) (%s) in no pkgs_dirs" % ("would leave" if check else "left", size) in result["msg"]
    assert (root / "home/alice/.conda/pkgs/numpy-1.0-0.tar.bz2").exists()
