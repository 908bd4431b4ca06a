"""Cross-filesystem cache relocation (``conda_pkgs_dirs`` with ``migrate``) against ``cp -a`` / ``mv``.

The installation is condafab's scalable fixture on the work directory's filesystem; the new cache
is on a tmpfs mounted for the run (always unmounted).  Each timed command starts from a fresh
``cp -a`` of the fixture (untimed, hard links kept).  Per round, alternating:

- ``cp -a`` and ``mv`` of the cache to the tmpfs (a cross-filesystem ``mv`` is copy + ``rm -rf``);
- the migration: plan (config resolution, environments, an inode-exact walk of the old cache,
  room check), staged copy keeping hard links, verify (every size, every tarball's sha256), config
  switch and re-resolution -- the new cache is live here, compared with ``cp -a`` -- then removal
  of the old cache through the safe-removal path (``Mover.finish``), the whole compared with ``mv``.

Median of the scale's runs (``ROUNDS`` by default) after its warm-up rounds.  The fixture's
records name in-host paths (``/opt/conda``) that do not exist here, so no environment is found
soft-linked into the cache; the per-record work is the same either way.
"""

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from condafab.scale import build
from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_relocate
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User

ROUNDS = 5
TARGET = 1.3  # migration time / cp -a time


def _sh(*argv):
    subprocess.run(list(argv), check=True)


def _du(path):
    return int(subprocess.check_output(["du", "-s", "--block-size=1", str(path)]).split()[0])


def _fresh_host(template, host):
    shutil.rmtree(host, ignore_errors=True)
    _sh("cp", "-a", str(template), str(host))


def _request(host, dest):
    root = str(host / "opt" / "conda")
    viewer = User("root", 0, 0, str(host / "root"))
    return conda_relocate.Request(root, root + "/.condarc", viewer, [viewer], [dest],
                                  migrate=True, link_old=True)


def _timed(command, dest):
    """Seconds for ``command`` (cp -a or mv) of the fixture's cache to ``dest``."""
    shutil.rmtree(dest, ignore_errors=True)
    started = time.perf_counter()
    _sh(*(command + [str(dest)]))
    elapsed = time.perf_counter() - started
    shutil.rmtree(dest)
    return elapsed


def _time_migration(host, dest):
    """Seconds of the whole migration and of its last phase (removing the old cache)."""
    finish = conda_relocate.Mover.finish
    phases = []

    def timed_finish(mover):
        started = time.perf_counter()
        finish(mover)
        phases.append(time.perf_counter() - started)

    conda_relocate.Mover.finish = timed_finish
    try:
        started = time.perf_counter()
        plan = conda_relocate.build_plan(_request(host, str(dest)))
        assert plan.move is not None and plan.move.method == "copy", "the benchmark must copy across filesystems"
        conda_relocate.apply(plan)
        total = time.perf_counter() - started
    finally:
        conda_relocate.Mover.finish = finish
    shutil.rmtree(dest)
    return total, phases[0]


def run(workdir, scale):
    """Figures for the harness: ``[{figure, a, b, ratio, target}]`` (ratio = a / b, lower is better)."""
    if os.geteuid() != 0:
        return []
    workdir = Path(workdir)
    template = workdir / "relocate-template"
    shutil.rmtree(template, ignore_errors=True)
    manifest = build(template, seed=5, packages=max(60, int(400 * scale)), files=40, envs=4)
    cache = template / "opt" / "conda" / "pkgs"
    cache_bytes = _du(cache)
    files = sum(len(f) for _d, _s, f in os.walk(cache))
    mount = workdir / "relocate-fast"
    mount.mkdir(exist_ok=True)
    _sh("mount", "-t", "tmpfs", "-o", "size=%d" % (2 * cache_bytes + (64 << 20)), "tmpfs", str(mount))
    host = workdir / "relocate-host"
    old = host / "opt" / "conda" / "pkgs"
    live, whole, copies, moves = [], [], [], []
    warmup = getattr(scale, "warmup", 1)
    try:
        for index in range(warmup + getattr(scale, "runs", ROUNDS)):
            _fresh_host(template, host)
            copy = _timed(["cp", "-a", str(old)], mount / "cp")
            move = _timed(["mv", str(old)], mount / "mv")
            _fresh_host(template, host)
            total, removal = _time_migration(host, mount / "pkgs")
            if index >= warmup:  # the first rounds warm caches and code paths
                copies.append(copy)
                moves.append(move)
                whole.append(total)
                live.append(total - removal)
    finally:
        shutil.rmtree(host, ignore_errors=True)
        _sh("umount", str(mount))
        shutil.rmtree(template, ignore_errors=True)
    label = "%d files, %.0f MiB, %d envs" % (files, cache_bytes / 1048576.0, len(manifest.envs))
    return [
        _figure("cross-FS migration until the new cache is live s vs cp -a s (%s)" % label, live, copies),
        _figure("whole cross-FS migration incl. removing the old cache s vs mv s (%s)" % label, whole, moves),
    ]


def _figure(name, a, b):
    a, b = statistics.median(a), statistics.median(b)
    return {"figure": name, "a": round(a, 3), "b": round(b, 3), "ratio": round(a / b, 2), "target": TARGET}


if __name__ == "__main__":
    import json
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        print(json.dumps(run(scratch, float(sys.argv[1]) if len(sys.argv) > 1 else 1.0), indent=1))
