"""Backup throughput: ``conda_pkgs_backup`` (hash + verify + copy + fsync) against ``cp`` of the same
tarballs into an empty directory.

The cache is a condafab installation plus packages whose sizes follow a log-normal spread like a
real cache (median ~256 KiB, a tail of tens of MiB), nine in ten with a repodata record (checked
by sha256), the rest tarball-only (md5 and sha256 computed).  Both sides read from the page cache
(files are read once before timing), each gets a fresh destination, rounds interleave the
contenders, and the best of ``ROUNDS`` is kept.  ``cp`` is measured alone and followed by
``sync -f`` (the durability the backup has: it fsyncs every file before naming it).
"""

import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import time
from pathlib import Path

from condafab.scale import build
from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_backup
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import PackageCache, Warnings

ROUNDS = 5
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


def _cpu(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _time_cp(files, dest, sync):
    """Wall seconds of ``cp`` (then ``sync -f``); CPU seconds go to the children's rusage."""
    _fresh(dest)
    started = time.perf_counter()
    subprocess.run(["cp", "-p", "--"] + files + [str(dest)], check=True)
    if sync:
        subprocess.run(["sync", "-f", str(dest)], check=True)
    return time.perf_counter() - started


def _time_backup(cache, dest, workers):
    """``(wall seconds, CPU seconds, result)`` of a first backup into an empty ``dest``."""
    _fresh(dest)
    cpu, started = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    result = conda_backup.run_backup(conda_backup.Store(str(dest), "bench"), [PackageCache(str(cache)).scan(Warnings())],
                                     Warnings(), workers=workers)
    elapsed, cpu = time.perf_counter() - started, _cpu(resource.RUSAGE_SELF) - cpu
    assert not result.plan.of("failed"), "the benchmark cache must back up cleanly"
    return elapsed, cpu, result


def _time_rerun(cache, dest, workers):
    started = time.perf_counter()
    result = conda_backup.run_backup(conda_backup.Store(str(dest), "bench"), [PackageCache(str(cache)).scan(Warnings())],
                                     Warnings(), workers=workers)
    assert not result.changed
    return time.perf_counter() - started


def _time_hash(files, workers):
    """sha256 of every byte, nothing written: the floor for any backup that verifies content."""
    started = time.perf_counter()
    conda_backup.run_parallel(lambda path: conda_backup.hash_copy(path, want_md5=False), files, workers)
    return time.perf_counter() - started


def run(workdir, scale):
    """Figures for the harness: ``[{figure, a, b, ratio, target}]`` (ratio = a / b, lower is better)."""
    workdir = Path(workdir)
    fsroot = _fresh(workdir / "host")
    build(fsroot, seed=3, packages=max(50, int(400 * scale)), files=40, envs=2)
    cache = fsroot / "opt" / "conda" / "pkgs"
    _fill(cache, int(TOTAL_BYTES * scale), seed=3)
    _warm(cache)
    files = sorted(str(cache / n) for n in os.listdir(cache) if n.endswith(TARBALL))
    total = sum(os.path.getsize(f) for f in files)
    workers = min(4, os.cpu_count() or 1)
    # Rounds interleave the contenders, so a load change on the machine hits all of them alike.
    cp_plain, cp_sync, cp_cpu, hashing, timings = [], [], [], [], []
    for _round in range(ROUNDS):
        cp_plain.append(_time_cp(files, workdir / "cp", sync=False))
        before = _cpu(resource.RUSAGE_CHILDREN)
        cp_sync.append(_time_cp(files, workdir / "cp", sync=True))
        cp_cpu.append(_cpu(resource.RUSAGE_CHILDREN) - before)
        hashing.append(_time_hash(files, workers))
        timings.append(_time_backup(cache, workdir / "dest", workers))
    cp_plain, cp_sync, cp_cpu, hashing = min(cp_plain), min(cp_sync), min(cp_cpu), min(hashing)
    first, _cpu_first, result = min(timings, key=lambda triple: triple[0])
    backup_cpu = min(t[1] for t in timings)
    assert len(result.copied) == len(files)
    rerun = min(_time_rerun(cache, workdir / "dest", workers) for _round in range(ROUNDS))
    shutil.rmtree(workdir / "cp", ignore_errors=True)
    label = "%d tarballs, %.0f MiB" % (len(files), total / 1048576.0)
    return [
        {"figure": "backup s vs cp+sync s (%s; MB/s %.0f vs %.0f)" % (label, total / first / 1e6, total / cp_sync / 1e6),
         "a": round(first, 3), "b": round(cp_sync, 3), "ratio": round(first / cp_sync, 2), "target": TARGET},
        {"figure": "backup s vs plain cp s, no fsync (%s)" % label,
         "a": round(first, 3), "b": round(cp_plain, 3), "ratio": round(first / cp_plain, 2), "target": TARGET},
        {"figure": "CPU s (user+sys) backup vs cp+sync (%s): independent of machine load" % label,
         "a": round(backup_cpu, 3), "b": round(cp_cpu, 3), "ratio": round(backup_cpu / cp_cpu, 2), "target": None},
        {"figure": "sha256 alone (no copy) s vs cp+sync s (%s): the verification floor" % label,
         "a": round(hashing, 3), "b": round(cp_sync, 3), "ratio": round(hashing / cp_sync, 2), "target": TARGET},
        {"figure": "unchanged re-run s vs first backup s (%s)" % label,
         "a": round(rerun, 3), "b": round(first, 3), "ratio": round(rerun / first, 3), "target": 0.1},
    ]


if __name__ == "__main__":
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        print(json.dumps(run(scratch, float(sys.argv[1]) if len(sys.argv) > 1 else 1.0), indent=1))
