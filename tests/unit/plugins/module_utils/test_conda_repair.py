# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda_cache_repair on real fixture caches: a damaged ``.tar.bz2`` package is re-extracted from
its verified tarball, a damaged ``.conda`` one is quarantined (conda re-extracts it), a damaged
tarball is copied back from a backup store, nothing is ever deleted, check mode changes nothing,
and an archive that would write outside its package is refused."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import os
import posixpath
import subprocess
import tarfile

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import STORE_DIR
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_integrity import gather
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_repair import (
    NEEDS_CONDA, QUARANTINE_DIR, RepairError, _inside_link, _member_target, repair, safe_extract)
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host

from .hostroot import host_users, in_root
from .test_conda_envs import USERS
from .test_conda_integrity import CACHE, build, with_tarball

PARAMS = dict(roots=[], pkgs_dirs=[], mode="fast", re_extract=True, backup_dest=None)


def run_repair(fsroot, check_mode=False, **params):
    return in_root(fsroot, lambda: repair(Host.load(host_users(USERS)), dict(PARAMS, **params), check_mode))


def audit(fsroot, mode="full"):
    return in_root(fsroot, gather, host_users(USERS), mode=mode)


def tree(path):
    """Every name under ``path`` with its type, size and content hash (what check mode must not change)."""
    return subprocess.check_output(["find", str(path), "-printf", "%P %y %s %i\n"]).decode().splitlines()


def damaged_package(manifest, ext, used_by=None, where=CACHE):
    """``(dist, fn)`` of an extracted package of the cache ``where`` with its tarball (ending in
    ``ext``) and a payload file, truncated."""
    cache = manifest.caches[where]
    for dist, fn in sorted(with_tarball(cache).items()):
        users = [p for p, e in manifest.envs.items() if dist in e.packages]
        paths = json.loads((manifest.real(where) / dist / "info/paths.json").read_text())["paths"]
        wanted = used_by is None or any(manifest.envs[p].link_type == used_by for p in users)
        if fn.endswith(ext) and paths and wanted:
            victim = manifest.real(where) / dist / paths[0]["_path"]
            fresh = victim.with_name(victim.name + ".new")  # a new inode: environments keep theirs
            fresh.write_bytes(victim.read_bytes()[:1])
            os.rename(str(fresh), str(victim))
            return dist, fn
    pytest.skip("no %s package in this fixture" % ext)


def test_a_damaged_tar_bz2_package_is_re_extracted_and_the_old_one_kept_in_quarantine(tmp_path):
    fsroot, manifest = build(tmp_path)
    dist, fn = damaged_package(manifest, ".tar.bz2")
    record = json.loads((manifest.real(CACHE) / dist / "info/repodata_record.json").read_text())
    assert audit(fsroot)["damaged"] == ["%s/%s" % (CACHE, dist)]
    before = tree(fsroot)
    planned = run_repair(fsroot, check_mode=True)
    assert tree(fsroot) == before and planned["changed"]
    [step] = [s for c in planned["caches"] for s in c["steps"]]
    assert step["action"] == "repair" and step["re_extract"] and step["tarball"] == "%s/%s" % (CACHE, fn)
    done = run_repair(fsroot)
    assert done["changed"] and done["re_extracted"] == ["%s/%s" % (CACHE, dist)]
    assert audit(fsroot)["sound"]
    # The record conda wrote at extraction stays; the damaged copy is in the quarantine, recorded.
    assert json.loads((manifest.real(CACHE) / dist / "info/repodata_record.json").read_text()) == record
    [moved] = done["quarantined"]
    quarantine = os.path.dirname(moved)
    assert moved.startswith(CACHE + "/" + QUARANTINE_DIR + "/") and os.path.isdir(str(fsroot) + moved)
    recorded = json.loads((fsroot / quarantine.lstrip("/") / "quarantine.json").read_text())
    assert [(m["original"], m["moved_to"]) for m in recorded["moved"]] == [("%s/%s" % (CACHE, dist), moved)]
    assert recorded["moved"][0]["findings"][0]["what"] == "size"
    assert run_repair(fsroot)["changed"] is False


def test_a_damaged_conda_package_is_quarantined_and_its_tarball_left_for_conda(tmp_path):
    fsroot, manifest = build(tmp_path)
    dist, fn = damaged_package(manifest, ".conda")
    done = run_repair(fsroot)
    [step] = [s for c in done["caches"] for s in c["steps"]]
    assert step["action"] == "quarantine" and step["note"] == NEEDS_CONDA and not step["quarantine_tarball"]
    assert not (manifest.real(CACHE) / dist).exists() and (manifest.real(CACHE) / fn).is_file()
    assert done["quarantined"][0].endswith("/" + dist)
    assert audit(fsroot)["sound"]


def test_a_package_a_soft_linked_environment_uses_is_kept_when_it_cannot_be_re_extracted(tmp_path):
    fsroot, manifest = build(tmp_path, "softlinked_env")
    dist, _fn = damaged_package(manifest, ".conda", used_by=2)
    done = run_repair(fsroot)
    [step] = [s for c in done["caches"] for s in c["steps"]]
    assert step["action"] == "keep" and "soft-linked" in step["kept"]
    assert (manifest.real(CACHE) / dist).is_dir() and done["quarantined"] == [] and not done["changed"]


def test_a_damaged_tarball_is_copied_back_from_the_backup_store(tmp_path):
    fsroot, manifest = build(tmp_path)
    dist, fn = sorted(with_tarball(manifest.caches[CACHE]).items())[0]
    record = json.loads((manifest.real(CACHE) / dist / "info/repodata_record.json").read_text())
    tarball = manifest.real(CACHE) / fn
    good = tarball.read_bytes()
    store = fsroot / "backup" / STORE_DIR / record["sha256"][:2]
    store.mkdir(parents=True)
    (store / record["sha256"]).write_bytes(good)
    tarball.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    planned = run_repair(fsroot, check_mode=True, mode="full")
    [step] = [s for c in planned["caches"] for s in c["steps"]]
    assert step["quarantine_tarball"] and step["restore_tarball_from"] is None  # no store named
    done = run_repair(fsroot, mode="full", backup_dest="/backup")
    [step] = [s for c in done["caches"] for s in c["steps"]]
    assert step["restore_tarball_from"] == "/backup/%s/%s/%s" % (STORE_DIR, record["sha256"][:2], record["sha256"])
    assert tarball.read_bytes() == good and audit(fsroot)["sound"]
    assert done["quarantined"][0].endswith("/" + fn)


def test_a_zeroed_record_is_rebuilt_when_urls_txt_verifies_the_tarball(tmp_path):
    fsroot, manifest = build(tmp_path)
    dist, fn = next((d, f) for d, f in sorted(with_tarball(manifest.caches[CACHE]).items()) if f.endswith(".tar.bz2"))
    record_path = manifest.real(CACHE) / dist / "info/repodata_record.json"
    record = json.loads(record_path.read_text())
    record_path.write_bytes(bytes(record_path.stat().st_size))
    url = record["url"]
    with open(str(manifest.real(CACHE) / "urls.txt"), "a") as handle:
        handle.write("%s#sha256:%s\n" % (url, record["sha256"]))
    done = run_repair(fsroot)
    assert done["re_extracted"] == ["%s/%s" % (CACHE, dist)]
    rebuilt = json.loads(record_path.read_text())
    index = json.loads((manifest.real(CACHE) / dist / "info/index.json").read_text())
    assert rebuilt == dict(index, fn=fn, url=url, channel=url.rsplit("/", 2)[0], md5=record["md5"],
                           sha256=record["sha256"], size=record["size"])
    assert audit(fsroot)["sound"]


def test_a_users_cache_is_repaired_as_that_user(tmp_path):
    fsroot, manifest = build(tmp_path, "multi_user")
    where = manifest.users["alice"].pkgs_dirs[0]
    fns = with_tarball(manifest.caches[where])
    ext = ".tar.bz2" if any(f.endswith(".tar.bz2") for f in fns.values()) else ".conda"
    dist, _fn = damaged_package(manifest, ext, where=where)
    done = run_repair(fsroot)
    [moved] = done["quarantined"]
    assert moved.startswith(where + "/" + QUARANTINE_DIR + "/") and moved.endswith("/" + dist)
    for path in (os.path.dirname(moved), moved, os.path.dirname(moved) + "/quarantine.json"):
        assert os.lstat(str(fsroot) + path).st_uid == 1001, path
    if ext == ".tar.bz2":
        assert done["re_extracted"] == ["%s/%s" % (where, dist)]
        assert os.lstat(str(manifest.real(where) / dist / "info/repodata_record.json")).st_uid == 1001
    assert audit(fsroot)["sound"]


def _archive(tmp_path, *members):
    """A .tar.bz2 of ``(name, kind, data or link target)``."""
    path = tmp_path / "bad.tar.bz2"
    with tarfile.open(str(path), "w:bz2") as archive:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                archive.addfile(info, io.BytesIO(value))
                continue
            info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
            info.linkname = value
            archive.addfile(info)
    return str(path)


@pytest.mark.parametrize("members", [
    [("../escaped", "file", b"x")],
    [("/etc/escaped", "file", b"x")],
    [("lib/out", "symlink", "../../escaped")],
    [("lib/abs", "symlink", "/etc/passwd")],
    [("dir", "symlink", "."), ("dir/../../escaped", "file", b"x")],
    [("lib", "symlink", "/tmp"), ("lib/escaped", "file", b"x")],
    [("hard", "hardlink", "/etc/passwd")],
], ids=["dotdot", "absolute", "symlink-out", "symlink-absolute", "dotdot-after-link", "file-through-link",
        "hardlink-out"])
def test_an_archive_that_would_write_outside_the_package_is_refused(tmp_path, members):
    dest = tmp_path / "new"
    dest.mkdir()
    with pytest.raises((RepairError, OSError)):
        safe_extract(_archive(tmp_path, *members), str(dest))
    assert not (tmp_path / "escaped").exists() and not os.path.lexists("/tmp/escaped")


def test_a_sound_archive_with_links_inside_is_extracted(tmp_path):
    dest = tmp_path / "new"
    dest.mkdir()
    safe_extract(_archive(tmp_path, ("lib/a.so.1", "file", b"elf"), ("lib/a.so", "symlink", "a.so.1"),
                          ("bin/tool", "hardlink", "lib/a.so.1")), str(dest))
    assert (dest / "lib/a.so").read_bytes() == b"elf" and os.readlink(str(dest / "lib/a.so")) == "a.so.1"
    assert os.stat(str(dest / "bin/tool")).st_ino == os.stat(str(dest / "lib/a.so.1")).st_ino


_PART = st.sampled_from(["a", "b", ".", "..", "", "lib", "x.so"])
_REL = st.lists(_PART, min_size=1, max_size=5).map("/".join)


@given(name=_REL, target=st.one_of(_REL, _REL.map(lambda p: "/" + p)))
@settings(max_examples=500, deadline=None)
def test_a_member_or_link_target_accepted_stays_inside_the_package(name, target):
    """The path rule of safe_extract: whatever a member's name and link target, what is accepted
    resolves (as the kernel would, no link followed) below the package directory."""
    try:
        accepted = _member_target(tarfile.TarInfo(name))
    except RepairError:
        return
    parts = posixpath.normpath("/pkg/" + accepted).split("/")
    assert parts[:2] == ["", "pkg"] and len(parts) > 2
    if _inside_link(accepted, target):
        resolved = posixpath.normpath(posixpath.join("/pkg", posixpath.dirname(accepted), target))
        assert resolved == "/pkg" or resolved.startswith("/pkg/")
