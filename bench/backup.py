"""Backup throughput: ``conda_pkgs_backup`` (scan, hash, verify, copy, flush, manifest) against
``cp`` of the same tarballs into an empty directory.  The cache is scanned as the module scans it
for a backup (``scan_tarballs``: its top-level files; extracted packages are not walked).

The cache is a condafab installation plus packages whose sizes follow a log-normal spread like a
real cache (median ~256 KiB, a tail of tens of MiB), nine in ten with a repodata record (checked
by sha256), the rest tarball-only (md5 and sha256 computed).  Both sides read from the page cache
(files are read once before timing) and get a fresh destination; the harness alternates them and
reports medians.  ``cp`` is measured alone and followed by ``sync -f`` (the durability the backup
has: its files are on disk before they get their names).  A third row times sha256 alone over the
same bytes: the floor of any backup that verifies content.

``python -m bench.backup [full]`` runs it alone (quick size by default).
"""

import hashlib
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

from bench.harness import FULL, QUICK, alternate, from_pair, median, timed
from condafab.scale import build
from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import hash_copy
from ansible_collections.pkgcache.fleet.plugins.module_utils._parallel import run_parallel
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup import run_backup
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import Store
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_cache import PackageCache
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import Warnings

TARGET = 1.3  # backup time / cp time
TOTAL_BYTES = 768 << 20  # at scale 1
TARBALL = (".conda", ".tar.bz2")


def _fill(cache, total, seed):
    """Packages of log-normal sizes until ``total`` bytes, each extracted far enough to carry its
    ``info/repodata_record.json`` (as most tarballs of a real cache are); every tenth is
    tarball-only.  Returns the bytes written."""
    rng = random.Random(seed)
    written, index = 0, 0
    while written < total:
        size = int(min(64 << 20, max(4096, rng.lognormvariate(12.45, 1.6))))
        dist = "bulk%05d-1.0-0" % index
        data = rng.randbytes(size)
        (cache / (dist + ".conda")).write_bytes(data)
        if index % 10:
            info = cache / dist / "info"
            info.mkdir(parents=True)
            index_json = {"name": "bulk%05d" % index, "version": "1.0", "build": "0", "build_number": 0,
                          "depends": [], "subdir": "linux-64"}
            (info / "index.json").write_text(json.dumps(index_json))
            record = dict(index_json, fn=dist + ".conda", size=size, md5=hashlib.md5(data).hexdigest(),
                          sha256=hashlib.sha256(data).hexdigest(),
                          url="https://conda.example.org/bench/linux-64/%s.conda" % dist,
                          channel="https://conda.example.org/bench/linux-64")
            (info / "repodata_record.json").write_text(json.dumps(record))
        written += size
        index += 1
    return written


def _warm(cache):
    for name in os.listdir(cache):
        if name.endswith(TARBALL):
            with open(cache / name, "rb") as handle:
                while handle.read(1 << 20):
                    pass


def _fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _fresh_run(func, dest):
    """A measure for :func:`harness.alternate`: empty ``dest``, then time ``func(dest)``."""
    def measure():
        _fresh(dest)
        sample, _result = timed(func, dest)
        return sample
    return measure


def _cp(files, sync):
    def copy(dest):
        subprocess.run(["cp", "-p", "--"] + files + [str(dest)], check=True)
        if sync:
            subprocess.run(["sync", "-f", str(dest)], check=True)
    return copy


def _backup(cache, workers, expect_changed=True):
    def backup(dest):
        result = run_backup(Store(str(dest), "bench"),
                            [PackageCache(str(cache)).scan_tarballs(Warnings())], Warnings(), workers=workers)
        assert not result.plan.of("failed"), "the benchmark cache must back up cleanly"
        assert result.changed is expect_changed
        return result
    return backup


def _hash_all(files, workers):
    """sha256 of every byte, nothing written: the floor for any backup that verifies content."""
    def hash_all(_dest):
        run_parallel(lambda path: hash_copy(path, want_md5=False), files, workers)
    return hash_all


def run(workdir, scale):
    """Rows for the harness (A = our backup; ratio = A / B wall clock, CPU ratio in the note)."""
    workdir = Path(workdir)
    fsroot = _fresh(workdir / "host")
    build(fsroot, seed=3, packages=max(50, int(400 * scale)), files=40, envs=2)
    cache = fsroot / "opt" / "conda" / "pkgs"
    _fill(cache, int(TOTAL_BYTES * scale), seed=3)
    _warm(cache)
    files = sorted(str(cache / n) for n in os.listdir(cache) if n.endswith(TARBALL))
    total = sum(os.path.getsize(f) for f in files)
    workers = min(4, os.cpu_count() or 1)
    label = "%d tarballs, %.0f MiB" % (len(files), total / 1048576.0)
    dest, copies = workdir / "dest", workdir / "cp"
    backup = _fresh_run(_backup(cache, workers), dest)
    rows = []
    for name, sync in (("cp -p", False), ("cp -p; sync -f", True)):
        pair = alternate(backup, _fresh_run(_cp(files, sync), copies), scale)
        speeds = [total / median([x.wall for x in side]) / 1e6 for side in (pair.a, pair.b)]
        rows.append(from_pair("backup (sha256-verified, fsynced) vs %s: %s" % (name, label), pair, TARGET,
                              note="%.0f vs %.0f MB/s" % tuple(speeds)))
    floor = alternate(_fresh_run(_hash_all(files, workers), copies), _fresh_run(_cp(files, True), copies), scale)
    rows.append(from_pair("sha256 alone (the verification floor) vs cp -p; sync -f: %s" % label, floor, None))
    rerun = _backup(cache, workers, expect_changed=False)
    again = alternate(lambda: timed(rerun, dest)[0], backup, scale)
    rows.append(from_pair("unchanged re-run (nothing read) vs first backup: %s" % label, again, 0.1))
    shutil.rmtree(copies, ignore_errors=True)
    return rows


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        print(json.dumps(run(scratch, FULL if sys.argv[1:] == ["full"] else QUICK), indent=1))
