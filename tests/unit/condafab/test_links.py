"""Environments are linked the way conda links them: hard links share the cache's inodes, soft
links point into the cache, copies are independent files."""

import hashlib
import os

from condafab.manifest import COPY, HARDLINK, SOFTLINK

from .ondisk import records


def _linked_files(manifest, link_type):
    """``(env file, cache file, paths_data entry, record)`` for every file of envs of one type."""
    envs = [e for e in manifest.envs.values() if e.link_type == link_type]
    assert envs, f"the fixture has no env with link type {link_type}"
    for env in envs:
        for record in records(manifest, env.prefix).values():
            for entry in record["paths_data"]["paths"]:
                source = manifest.real(record["extracted_package_dir"]) / entry["_path"]
                yield manifest.real(env.prefix) / entry["_path"], source, entry, record


def test_hardlinked_env_files_are_the_cache_inodes(small):
    count = 0
    for target, source, entry, record in _linked_files(small, HARDLINK):
        st, src = os.lstat(target), os.lstat(source)
        assert (st.st_dev, st.st_ino) == (src.st_dev, src.st_ino) and st.st_nlink > 1, target
        assert entry["path_type"] == "hardlink" and record["link"]["type"] == 1
        count += 1
    assert count > 100


def test_softlinked_env_files_are_symlinks_resolving_into_the_cache(small):
    count = 0
    for target, source, entry, record in _linked_files(small, SOFTLINK):
        assert target.is_symlink()
        pointed = os.readlink(target)  # an in-host absolute path, resolved through the fsroot
        assert pointed == f"{record['extracted_package_dir']}/{entry['_path']}"
        assert pointed.startswith("/opt/conda/pkgs/")
        assert os.path.samefile(small.real(pointed), source)
        assert entry["path_type"] == "softlink" and record["link"]["type"] == 2
        count += 1
    assert count > 50


def test_copied_env_files_are_independent_with_the_recorded_content(small):
    count = 0
    for target, _source, entry, record in _linked_files(small, COPY):
        st = os.lstat(target)
        assert st.st_nlink == 1 and not target.is_symlink()
        assert hashlib.sha256(target.read_bytes()).hexdigest() == entry["sha256"]
        assert record["link"]["type"] == 3
        count += 1
    assert count > 50


def test_copied_env_may_outlive_its_extracted_package(small):
    """After `conda clean -p`, a copied env's records name extracted dirs that are gone."""
    cache = small.cache("/opt/conda/pkgs")
    copied = [e for e in small.envs.values() if e.link_type == COPY]
    gone = {d for e in copied for d in e.packages if d not in cache.extracted}
    assert gone and all(not small.real(f"{cache.path}/{d}").exists() for d in gone)


def test_package_with_internal_hard_link_has_two_names_on_one_inode(small):
    cache = small.cache("/opt/conda/pkgs")
    (dist,) = cache.internal_hardlink
    top = small.real(f"{cache.path}/{dist}")
    a, b = os.lstat(top / "bin/git"), os.lstat(top / "libexec/git-core/git")
    assert a.st_ino == b.st_ino and a.st_nlink >= 2
