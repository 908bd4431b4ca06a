# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy-with-hash and the tree copy that keeps hard links, on real trees; expected digests come
from hashlib over the files, not from the code under test."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os

import pytest

from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import CopyError, TreeCopier, hash_copy


def test_hash_copy_copies_every_byte_and_returns_both_digests(tmp_path):
    src = tmp_path / "a.conda"
    data = os.urandom((3 << 20) + 17)  # more than one chunk, not a multiple of it
    src.write_bytes(data)
    fd = os.open(str(tmp_path / "copy"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        size, sha256, md5, before, after = hash_copy(str(src), fd)
    finally:
        os.close(fd)
    assert (tmp_path / "copy").read_bytes() == data
    assert (size, sha256, md5) == (len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())
    assert before.st_size == after.st_size == len(data)


def test_hash_copy_does_not_follow_a_symlink(tmp_path):
    (tmp_path / "secret").write_bytes(b"x")
    os.symlink(str(tmp_path / "secret"), str(tmp_path / "a.conda"))
    with pytest.raises(OSError) as raised:
        hash_copy(str(tmp_path / "a.conda"))
    assert raised.value.errno == errno.ELOOP


def build_tree(root):
    (root / "pkg" / "info").mkdir(parents=True)
    (root / "pkg" / "info" / "index.json").write_text("{}\n")
    (root / "pkg" / "lib.so").write_bytes(os.urandom(5000))
    os.link(str(root / "pkg" / "lib.so"), str(root / "pkg" / "lib.so.1"))
    os.symlink("lib.so", str(root / "pkg" / "lib-link.so"))
    (root / "a.conda").write_bytes(os.urandom(70000))
    os.chmod(str(root / "pkg" / "info" / "index.json"), 0o600)
    os.utime(str(root / "a.conda"), ns=(1, 1234567890123456789))


def copied_tree(tmp_path):
    """``(source, copy, copier)``: :func:`build_tree` copied with its tarballs hashed."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    build_tree(src)
    copier = TreeCopier(hashed=lambda path: path.endswith(".conda"))
    copier.copy(str(src), str(dst))
    return src, dst, copier


def test_tree_copy_keeps_hard_links_symlinks_modes_and_times_and_hashes_what_it_is_asked_to(tmp_path):
    src, dst, copier = copied_tree(tmp_path)
    copier.verify()
    assert os.stat(str(dst / "pkg" / "lib.so")).st_ino == os.stat(str(dst / "pkg" / "lib.so.1")).st_ino
    assert os.stat(str(dst / "pkg" / "lib.so")).st_ino != os.stat(str(src / "pkg" / "lib.so")).st_ino
    assert os.readlink(str(dst / "pkg" / "lib-link.so")) == "lib.so"
    assert os.stat(str(dst / "pkg" / "info" / "index.json")).st_mode & 0o777 == 0o600
    assert os.stat(str(dst / "a.conda")).st_mtime_ns == 1234567890123456789
    for path in src.rglob("*"):
        if path.is_file():
            assert (dst / path.relative_to(src)).read_bytes() == path.read_bytes()
    hashed = dict((os.path.basename(p), sha) for p, _size, sha in copier.files if sha)
    assert hashed == {"a.conda": hashlib.sha256((src / "a.conda").read_bytes()).hexdigest()}


def test_tree_copy_verify_catches_a_copy_changed_after_it_was_made(tmp_path):
    _src, dst, copier = copied_tree(tmp_path)
    data = bytearray((dst / "a.conda").read_bytes())
    data[100] ^= 0xFF
    (dst / "a.conda").write_bytes(bytes(data))
    with pytest.raises(CopyError, match="a.conda differs from its source"):
        copier.verify()
