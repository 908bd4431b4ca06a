# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DiskUsage: merged sets count each inode once and know which inodes they hold every link of."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import marshal
import os
import resource
import subprocess

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils import _diskusage
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, Walks, walk


def du(*paths):
    out = subprocess.check_output(["du", "-s", "-c", "--block-size=1"] + [str(p) for p in paths]).decode()
    return int(out.strip().splitlines()[-1].split()[0])


def test_merging_sets_that_share_inodes_equals_walking_them_together(tmp_path):
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    (a / "big").write_bytes(os.urandom(50000))
    (a / "own").write_bytes(os.urandom(9000))
    os.link(str(a / "big"), str(b / "big"))  # shared by a and b only
    (b / "mine").write_bytes(os.urandom(7000))
    os.link(str(b / "mine"), str(c / "mine"))  # b's file also linked from c (outside a+b)
    os.symlink("/nowhere", str(a / "dangling"))

    ab = walk(str(a))
    ab.update(walk(str(b)))
    together = walk(str(a))
    walk(str(b), together)
    assert ab.as_dict() == together.as_dict()
    assert ab.on_disk == du(a, b)
    # Removing a and b frees everything but the inode c still links.
    assert ab.reclaimable == du(a, b) - os.lstat(str(b / "mine")).st_blocks * 512
    alone = walk(str(a))
    assert alone.reclaimable == alone.on_disk - os.lstat(str(a / "big")).st_blocks * 512
    assert alone.apparent == 50000 + 9000 + len("/nowhere")


def test_add_counts_names_and_inodes(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 10)
    os.link(str(tmp_path / "f"), str(tmp_path / "g"))
    usage = DiskUsage()
    usage.add(os.lstat(str(tmp_path / "f")))
    usage.add(os.lstat(str(tmp_path / "g")))
    assert (usage.entries, usage.files, usage.apparent) == (2, 2, 20)
    assert usage.on_disk == os.lstat(str(tmp_path / "f")).st_blocks * 512
    assert usage.reclaimable == usage.on_disk and usage.has_multiply_linked


def test_walk_holds_one_descriptor_per_level_and_never_follows_links(tmp_path):
    """A wide tree is walked under a descriptor limit far below its directory count, and its
    totals are du's; a symlink to a directory is counted as the link, not walked."""
    top = tmp_path / "top"
    for index in range(300):
        leaf = top / ("d%03d" % index) / "sub"
        leaf.mkdir(parents=True)
        (leaf / "f").write_bytes(b"x" * (index + 1))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(os.urandom(100000))
    os.symlink(str(outside), str(top / "link"))
    seen = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 8, hard))
    try:
        usage = walk(str(top), on_entry=lambda path, st: seen.append(path))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert usage.on_disk == du(top)
    assert usage.entries == 1 + 300 * 3 + 1 == len(seen)
    assert str(top / "d299" / "sub" / "f") in seen and str(top / "link") in seen
    assert not any(path.startswith(str(top / "link") + "/") for path in seen)


def _tree_with_shared_inodes(tmp_path, count=12):
    """``count`` package-like dirs; neighbours share a hard-linked file, so inode maps matter."""
    tops = []
    for index in range(count):
        top = tmp_path / ("pkg%02d" % index)
        (top / "lib" / "deep").mkdir(parents=True)
        (top / "lib" / "deep" / "own").write_bytes(os.urandom(1000 * (index + 1)))
        (top / "info").mkdir()
        (top / "info" / "index.json").write_text("{}")
        if index:
            os.link(str(tops[-1] / "lib" / "deep" / "own"), str(top / "lib" / "from-before"))
        tops.append(top)
    return [str(top) for top in tops]


def _comparable(usage):
    return usage.as_dict(), sorted(usage.inodes())


@pytest.mark.parametrize("workers", [1, 2, 3, 5])
def test_parallel_walks_give_what_walk_gives_with_errors_in_order(tmp_path, workers):
    tops = _tree_with_shared_inodes(tmp_path)
    tops[3:3] = [str(tmp_path / "gone-1")]
    tops.append(str(tmp_path / "gone-2"))
    errors = []
    usages = Walks(tops, on_error=lambda path, exc: errors.append((path, exc.errno)), workers=workers).result()
    assert [_comparable(u) for u in usages] == [_comparable(walk(top)) for top in tops]
    assert errors == [(str(tmp_path / "gone-1"), errno.ENOENT), (str(tmp_path / "gone-2"), errno.ENOENT)]
    merged = DiskUsage()
    for usage in usages:
        merged.update(usage)
    assert merged.on_disk == du(*tops[:3] + tops[4:-1])


def test_a_failed_helper_is_replaced_by_walking_its_share_here(tmp_path, monkeypatch):
    """A helper that cannot hand its result back exits non-zero; nothing is lost."""

    class BrokenDumps(object):
        loads = staticmethod(marshal.loads)

        @staticmethod
        def dumps(_value):
            raise MemoryError("as if the helper ran out of memory")

    tops = _tree_with_shared_inodes(tmp_path)
    monkeypatch.setattr(_diskusage, "marshal", BrokenDumps)
    walks = Walks(tops, workers=2)
    assert len(walks.helpers) == 1
    usages = walks.result()
    assert [_comparable(u) for u in usages] == [_comparable(walk(top)) for top in tops]


def test_without_a_process_to_spare_the_walks_run_here(tmp_path, monkeypatch):
    def no_fork():
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    tops = _tree_with_shared_inodes(tmp_path)
    monkeypatch.setattr(os, "fork", no_fork)
    walks = Walks(tops, workers=3)
    assert walks.helpers == [None, None]
    assert [_comparable(u) for u in walks.result()] == [_comparable(walk(top)) for top in tops]


def test_a_callback_that_raises_leaves_no_directory_open(tmp_path):
    top = tmp_path / "top"
    (top / "a" / "b" / "c").mkdir(parents=True)
    (top / "a" / "b" / "c" / "f").write_bytes(b"x")
    before = sorted(os.listdir("/proc/self/fd"))

    def stop(path, _st):
        if path.endswith("/f"):
            raise KeyError(path)

    with pytest.raises(KeyError):
        walk(str(top), on_entry=stop)
    assert sorted(os.listdir("/proc/self/fd")) == before
