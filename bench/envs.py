"""Environment facts and cache integrity against the tools an operator would use instead.

- ``envs fast``: A = ``conda_envs.gather(users, roots=[ROOT], mode="fast")`` (sizes, health by
  size, orphans of every environment), in a chroot of the main fixture; B = ``du -s`` of the same
  prefixes (the root prefix without its ``pkgs/`` and ``envs/``, which gather does not count in it).
- ``envs full``: A = the same in ``full`` mode, which hashes every file the records give a sha256;
  B = ``sha256sum`` of exactly those files (a soft-linked environment's in the cache), listed
  from the records.  Reported as seconds and MB/s of the bytes hashed.
- ``integrity full``: A = ``conda_integrity.gather(..., mode="full")`` over the cache; B =
  ``sha256sum`` of every file ``info/paths.json`` lists and every tarball with a recorded hash.

Each A run must see what was built: every environment healthy, every file hashed, the cache
sound; otherwise the benchmark fails.
"""

import json
import os
from dataclasses import asdict

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_envs, conda_integrity

from bench import fixtures
from bench.harness import Sample, alternate, from_pair, median, timed, timed_command
from condafab.chroot import in_host

FAST_TARGET = 2.0  # gather reads every record and lstats every listed file on top of du's walk
FULL_TARGET = 1.3  # hashing is the work; everything else should be small next to it
WORKERS = 2  # the module's default


def _envs_timed(root, mode):
    sample, facts = timed(conda_envs.gather, fixtures.USERS, roots=[root], mode=mode, workers=WORKERS)
    return {"sample": asdict(sample), "totals": facts["totals"], "warnings": facts["warnings"],
            "hashed": sum(e["health"]["hashed_files"] for e in facts["environments"]),
            "prefixes": [e["path"] for e in facts["environments"]]}


def _integrity_timed(root):
    sample, facts = timed(conda_integrity.gather, fixtures.USERS, roots=[root], mode=conda_integrity.FULL)
    return {"sample": asdict(sample), "sound": facts["sound"], "warnings": facts["warnings"],
            "hashed": sum(c["hashed_files"] for c in facts["caches"]), "totals": facts["totals"]}


def gather_envs(fixture, mode, expect_hashed=None):
    result = in_host(fixture.fsroot, _envs_timed, fixtures.ROOT, mode)
    if result["warnings"] or result["totals"]["unhealthy"] or (
            expect_hashed is not None and result["hashed"] != expect_hashed):
        raise AssertionError("conda_envs.gather did not see the fixture as built: %s hashed %d of %s; %s" % (
            result["totals"], result["hashed"], expect_hashed, result["warnings"][:3]))
    return result


def hashed_env_files(fixture, prefixes):
    """The controller-side paths of every file full mode hashes: each record's ``paths_data``
    entry with a sha256, in the prefix, or in the cache where the prefix holds a symlink to it."""
    paths = []
    for prefix in prefixes:
        meta = fixture.fsroot / prefix.lstrip("/") / "conda-meta"
        for name in sorted(os.listdir(meta)):
            if not name.endswith(".json"):
                continue
            record = json.loads((meta / name).read_text())
            for entry in record.get("paths_data", {}).get("paths", []):
                if not (entry.get("sha256_in_prefix") or entry.get("sha256")) or entry.get("path_type") == "directory":
                    continue
                path = fixture.fsroot / prefix.lstrip("/") / entry["_path"]
                if path.is_symlink():
                    path = fixture.fsroot / os.readlink(path).lstrip("/")
                paths.append(str(path))
    return paths


def hashed_cache_files(fixture):
    paths = []
    for name in sorted(os.listdir(fixture.cache)):
        entry = fixture.cache / name
        listing = entry / "info" / "paths.json"
        if listing.is_file():
            paths.extend(str(entry / p["_path"]) for p in json.loads(listing.read_text())["paths"])
        elif name.endswith((".conda", ".tar.bz2")):
            dist = name[: -len(".conda")] if name.endswith(".conda") else name[: -len(".tar.bz2")]
            if (fixture.cache / dist / "info" / "repodata_record.json").is_file():
                paths.append(str(entry))
    return paths


def sha256sum(listing):
    """``sha256sum`` of the NUL-separated file list ``listing``, as ``xargs`` batches it."""
    return lambda: timed_command(["sh", "-c", 'xargs -0 sha256sum < "$1" > /dev/null', "sh", str(listing)])


def _listing(workdir, name, paths):
    listing = workdir / name
    listing.write_bytes(b"\0".join(p.encode() for p in paths))
    return listing, sum(os.lstat(p).st_size for p in paths)


def _mb_per_s(size, samples):
    return size / median([s.wall for s in samples]) / 1e6


def run(workdir, scale):
    fixture = fixtures.get(workdir, scale.packages, scale)
    rows = []
    prefixes = gather_envs(fixture, conda_envs.FAST)["prefixes"]
    real = [str(fixture.fsroot / p.lstrip("/")) for p in prefixes]
    du = ["du", "-s", "--exclude=%s" % (fixture.root / "pkgs"), "--exclude=%s" % (fixture.root / "envs")] + real
    pair = alternate(lambda: Sample(**gather_envs(fixture, conda_envs.FAST)["sample"]),
                     lambda: timed_command(du), scale)
    rows.append(from_pair("envs fast: conda_envs.gather() vs du -s, %d environments, %d packages" % (
        len(prefixes), scale.packages), pair, FAST_TARGET))

    files = hashed_env_files(fixture, prefixes)
    listing, size = _listing(workdir, "env-files.list", files)
    pair = alternate(lambda: Sample(**gather_envs(fixture, conda_envs.FULL, len(files))["sample"]),
                     sha256sum(listing), scale)
    rows.append(from_pair("envs full: conda_envs.gather(mode=full) vs sha256sum, %d files, %.1f MB" % (
        len(files), size / 1e6), pair, FULL_TARGET, note="%.1f vs %.1f MB/s" % (
        _mb_per_s(size, pair.a), _mb_per_s(size, pair.b))))

    files = hashed_cache_files(fixture)
    listing, size = _listing(workdir, "cache-files.list", files)

    def audit():
        result = in_host(fixture.fsroot, _integrity_timed, fixtures.ROOT)
        if not result["sound"] or result["warnings"] or result["hashed"] + result["totals"]["tarballs"] \
                - result["totals"]["unverified_tarballs"] != len(files):
            raise AssertionError("conda_integrity.gather did not see the cache as built: %s" % result)
        return Sample(**result["sample"])

    pair = alternate(audit, sha256sum(listing), scale)
    rows.append(from_pair("integrity full: conda_integrity.gather(mode=full) vs sha256sum, %d files, %.1f MB" % (
        len(files), size / 1e6), pair, FULL_TARGET, note="%.1f vs %.1f MB/s" % (
        _mb_per_s(size, pair.a), _mb_per_s(size, pair.b))))
    return rows
