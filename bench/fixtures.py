"""Fixture hosts for the benchmarks, built once per run with the project's builder (condafab).

A fixture is condafab's scalable installation (``/opt/conda``, its cache, ``envs`` environments)
under ``<workdir>/fixture-<packages>x<files>x<envs>-s<seed>/root``.  Benchmark modules ask for one
by size; the first ask builds it, later asks in the same run reuse it (read-only benchmarks work
on it directly, mutating ones on ``cp -a`` copies, see :func:`copy_tree`).
"""

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from condafab.scale import ROOT, build

from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import User

# The scale fixture has no user accounts: root alone, as on a server with one shared installation.
USERS = [User("root", 0, 0, "/root")]
STALE = 7200  # seconds: partial downloads younger than conda_clean's busy_age mark a cache busy


@dataclass(frozen=True)
class Fixture:
    fsroot: Path  # the host's "/"
    packages: int
    files: int  # names in the tree (files and symlinks), what per-file figures divide by
    extracted: int  # extracted packages in the cache, to check the code under test saw them all
    orphans: int
    build_seconds: float

    @property
    def root(self):
        """The conda root prefix as the controller sees it."""
        return self.fsroot / ROOT.lstrip("/")

    @property
    def cache(self):
        return self.root / "pkgs"

    @property
    def home(self):
        return self.fsroot.parent


def get(workdir, packages, scale):
    """The fixture with ``packages`` packages (``scale`` gives files per package, envs, seed)."""
    home = _home(workdir, packages, scale)
    summary = home / "fixture.json"
    if not summary.exists():
        shutil.rmtree(home, ignore_errors=True)
        start = time.perf_counter()
        manifest = build(home / "root", scale.seed, packages=packages, files=scale.files, envs=scale.envs)
        _age_partials(manifest)
        cache = manifest.caches[ROOT + "/pkgs"]
        summary.write_text(json.dumps({
            "packages": packages,
            "files": count_names(home / "root"),
            "extracted": len(cache.extracted),
            "orphans": len(cache.orphans),
            "build_seconds": time.perf_counter() - start,
        }))
    return load(home)


def load(home):
    """The fixture built in ``home`` (a fresh interpreter can pick it up from there)."""
    data = json.loads((Path(home) / "fixture.json").read_text())
    return Fixture(fsroot=Path(home) / "root", **data)


def _age_partials(manifest):
    """The builder writes partial downloads "now"; a benchmark of cleaning wants an idle cache,
    not one conda_clean rightly skips as busy."""
    then = time.time() - STALE
    for path, cache in manifest.caches.items():
        for name in cache.partial:
            os.utime(str(manifest.real(path) / name), (then, then))


def _home(workdir, packages, scale):
    return Path(workdir) / ("fixture-%dx%dx%d-s%d" % (packages, scale.files, scale.envs, scale.seed))


def drop(workdir, packages, scale):
    """Free the space (tmpfs is memory) once no later benchmark needs this size."""
    shutil.rmtree(str(_home(workdir, packages, scale)), ignore_errors=True)


def drop_all(workdir):
    """Free every fixture once no later benchmark reads them (the fleet wants the memory)."""
    for home in Path(workdir).glob("fixture-*"):
        shutil.rmtree(str(home), ignore_errors=True)


def count_names(top):
    """Files and symlinks under ``top`` (directories not counted)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(str(top)):
        total += len(filenames)
        total += sum(1 for d in dirnames if os.path.islink(os.path.join(dirpath, d)))
    return total


def copy_tree(source, dest):
    """``cp -a``: a copy that keeps hard links (within the tree), modes, owners and times."""
    shutil.rmtree(str(dest), ignore_errors=True)
    subprocess.run(["cp", "-a", str(source), str(dest)], check=True)
    return Path(dest)
