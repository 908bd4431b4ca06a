# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache integrity audit on real fixture caches: sound caches of every layout (hard-linked,
soft-linked and copied environments) report nothing, and each kind of damage done to an
extracted package, its records or a tarball is reported exactly, with expected and found."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os

import pytest

from condafab.layouts import DEFAULT_USERS, LAYOUTS

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_integrity import gather

from .hostroot import host_users, in_root
from .test_conda_envs import USERS

CACHE = "/opt/conda/pkgs"


def build(tmp_path, layout="single_root", seed=7):
    fsroot = tmp_path / "host"
    return fsroot, LAYOUTS[layout](fsroot, seed, list(DEFAULT_USERS))


def audit(fsroot, mode="fast"):
    return in_root(fsroot, gather, host_users(USERS), mode=mode)


def extracted_file(manifest, cache=CACHE):
    """``(dist, relative path, paths.json entry)`` of a payload file of an extracted package."""
    for dist in sorted(manifest.caches[cache].extracted):
        paths = json.loads((manifest.real(cache) / dist / "info/paths.json").read_text())["paths"]
        if paths:
            return dist, paths[0]["_path"], paths[0]
    raise AssertionError("no extracted payload file")


def with_tarball(cache):
    """``{dist: fn}`` of the cache's extracted packages that have their tarball too."""
    return dict((fn.rsplit(".conda", 1)[0].rsplit(".tar.bz2", 1)[0], fn) for fn in cache.tarballs
                if fn.rsplit(".conda", 1)[0].rsplit(".tar.bz2", 1)[0] in set(cache.extracted))


def only(facts, *findings):
    """``facts`` report exactly ``findings`` (in-host paths), and nothing else is damaged."""
    assert sorted(facts["findings"], key=lambda f: (f["entry"], f["path"])) == sorted(
        findings, key=lambda f: (f["entry"], f["path"]))
    assert facts["findings_count"] == len(findings) and facts["sound"] is (not findings)
    assert facts["damaged"] == sorted(set(f["entry"] for f in findings))


def found(entry, path, what, expected, got):
    return {"entry": entry, "path": path, "what": what, "expected": expected, "found": got}


@pytest.mark.parametrize("mode", ["fast", "full"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_sound_caches_of_every_layout_report_nothing(tmp_path, layout, mode):
    fsroot, manifest = build(tmp_path, layout)
    facts = audit(fsroot, mode)
    only(facts)
    assert facts["warnings"] == []
    by_path = dict((c["path"], c) for c in facts["caches"])
    for path, cache in manifest.caches.items():
        if path not in by_path:
            continue
        assert by_path[path]["packages"] == len(cache.extracted)
        assert by_path[path]["tarballs"] == len(cache.tarballs)
    files = sum(c["checked_files"] for c in facts["caches"])
    assert files > 0
    assert sum(c["hashed_files"] for c in facts["caches"]) == (files if mode == "full" else 0)
    # Every tarball whose dist is extracted has a record with its hashes.
    assert facts["totals"]["unverified_tarballs"] == sum(
        len(c.tarball_only) for p, c in manifest.caches.items() if p in by_path)


def test_a_deleted_file_is_missing(tmp_path):
    fsroot, manifest = build(tmp_path)
    dist, rel, _entry = extracted_file(manifest)
    (manifest.real(CACHE) / dist / rel).unlink()
    entry = "%s/%s" % (CACHE, dist)
    for mode in ("fast", "full"):
        only(audit(fsroot, mode), found(entry, "%s/%s" % (entry, rel), "missing", "hardlink", None))


def test_a_file_replaced_by_a_link_to_nowhere_is_reported(tmp_path):
    fsroot, manifest = build(tmp_path)
    dist, rel, _entry = extracted_file(manifest)
    real = manifest.real(CACHE) / dist / rel
    real.unlink()
    os.symlink("/nowhere", str(real))
    entry = "%s/%s" % (CACHE, dist)
    only(audit(fsroot), found(entry, "%s/%s" % (entry, rel), "not_a_file", "regular file", "symlink"))


def test_a_truncated_file_is_reported_in_both_modes(tmp_path):
    fsroot, manifest = build(tmp_path)
    dist, rel, meta = extracted_file(manifest)
    real = manifest.real(CACHE) / dist / rel
    os.truncate(str(real), 3)
    entry = "%s/%s" % (CACHE, dist)
    for mode in ("fast", "full"):
        only(audit(fsroot, mode), found(entry, "%s/%s" % (entry, rel), "size", meta["size_in_bytes"], 3))


def test_an_altered_file_of_the_same_size_is_found_only_in_full_mode(tmp_path):
    fsroot, manifest = build(tmp_path)
    dist, rel, meta = extracted_file(manifest)
    real = manifest.real(CACHE) / dist / rel
    data = real.read_bytes()
    altered = bytes([data[0] ^ 0xFF]) + data[1:]
    fresh = real.with_name(real.name + ".new")
    fresh.write_bytes(altered)
    os.rename(str(fresh), str(real))
    only(audit(fsroot, "fast"))
    entry = "%s/%s" % (CACHE, dist)
    only(audit(fsroot, "full"), found(entry, "%s/%s" % (entry, rel), "sha256", meta["sha256"],
                                      hashlib.sha256(altered).hexdigest()))


def test_a_zeroed_repodata_record_is_reported_and_its_tarball_counts_as_unverified(tmp_path):
    fsroot, manifest = build(tmp_path)
    cache = manifest.caches[CACHE]
    dist = sorted(with_tarball(cache))[0]
    record = manifest.real(CACHE) / dist / "info/repodata_record.json"
    size = record.stat().st_size
    record.write_bytes(bytes(size))  # what mamba 2.1.1-2.3.2 left (mamba#4052)
    before = audit(fsroot)["totals"]["unverified_tarballs"]
    entry = "%s/%s" % (CACHE, dist)
    facts = audit(fsroot)
    only(facts, found(entry, entry + "/info/repodata_record.json", "zeroed", "a JSON object",
                      "zeroed: %d bytes, all NUL" % size))
    assert facts["totals"]["unverified_tarballs"] == before


def test_a_truncated_or_mismatched_repodata_record_is_reported(tmp_path):
    fsroot, manifest = build(tmp_path)
    dists = sorted(manifest.caches[CACHE].extracted)
    truncated = manifest.real(CACHE) / dists[0] / "info/repodata_record.json"
    text = truncated.read_text()
    truncated.write_text(text[: len(text) // 2])
    mismatched = manifest.real(CACHE) / dists[1] / "info/repodata_record.json"
    data = json.loads(mismatched.read_text())
    index = json.loads((manifest.real(CACHE) / dists[1] / "info/index.json").read_text())
    data["version"] = "0.0.0"
    mismatched.write_text(json.dumps(data))
    facts = audit(fsroot)
    first, second = ("%s/%s" % (CACHE, d) for d in dists[:2])
    [bad_json] = [f for f in facts["findings"] if f["entry"] == first]
    assert bad_json["what"] == "invalid_json" and bad_json["path"] == first + "/info/repodata_record.json"
    assert [f for f in facts["findings"] if f["entry"] == second] == [found(
        second, second + "/info/repodata_record.json", "record_mismatch",
        "%s-%s-%s" % (index["name"], index["version"], index["build"]),
        "%s-0.0.0-%s" % (index["name"], index["build"]))]
    assert facts["findings_count"] == 2


def test_tarballs_are_checked_against_their_records(tmp_path):
    fsroot, manifest = build(tmp_path)
    cache = manifest.caches[CACHE]
    fns = with_tarball(cache)
    short, flipped = sorted(fns)[:2]
    record = json.loads((manifest.real(CACHE) / short / "info/repodata_record.json").read_text())
    os.truncate(str(manifest.real(CACHE) / fns[short]), record["size"] - 1)
    path = manifest.real(CACHE) / fns[flipped]
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    short_path, flipped_path = ("%s/%s" % (CACHE, fns[d]) for d in (short, flipped))
    only(audit(fsroot, "fast"), found(short_path, short_path, "size", record["size"], record["size"] - 1))
    flipped_record = json.loads((manifest.real(CACHE) / flipped / "info/repodata_record.json").read_text())
    only(audit(fsroot, "full"), found(short_path, short_path, "size", record["size"], record["size"] - 1),
         found(flipped_path, flipped_path, "sha256", flipped_record["sha256"], hashlib.sha256(data).hexdigest()))


def test_a_urls_txt_fragment_verifies_a_tarball_without_record(tmp_path):
    fsroot, manifest = build(tmp_path)
    cache = manifest.caches[CACHE]
    dist = sorted(cache.tarball_only)[0]
    fn = next(fn for fn in cache.tarballs if fn.startswith(dist + "."))
    path = manifest.real(CACHE) / fn
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    with open(str(manifest.real(CACHE) / "urls.txt"), "a") as handle:
        handle.write("https://conda.anaconda.org/conda-forge/linux-64/%s#%s\n" % (fn, md5))
    before = audit(fsroot, "full")
    only(before)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))
    where = "%s/%s" % (CACHE, fn)
    only(audit(fsroot, "full"), found(where, where, "md5", md5, hashlib.md5(data).hexdigest()))
    assert audit(fsroot, "full")["totals"]["unverified_tarballs"] == before["totals"]["unverified_tarballs"]


def test_a_packaged_symlink_is_checked_for_its_target(tmp_path):
    """paths.json lists a package's own symlinks as ``softlink``: one leading to a file of the
    package is sound, one leading nowhere is dangling."""
    fsroot, manifest = build(tmp_path)
    dist, rel, _entry = extracted_file(manifest)
    package = manifest.real(CACHE) / dist
    listing = json.loads((package / "info/paths.json").read_text())
    directory = os.path.dirname(rel)
    target = os.path.basename(rel)
    for name, points_to in (("sound.link", target), ("dangling.link", "gone.so")):
        os.symlink(points_to, str(package / directory / name))
        listing["paths"].append({"_path": os.path.join(directory, name), "path_type": "softlink",
                                 "sha256": "0" * 64, "size_in_bytes": 0})
    (package / "info/paths.json").write_text(json.dumps(listing))
    entry = "%s/%s" % (CACHE, dist)
    for mode in ("fast", "full"):
        only(audit(fsroot, mode), found(entry, "%s/%s" % (entry, os.path.join(directory, "dangling.link")),
                                        "dangling", "an existing target", "gone.so"))
