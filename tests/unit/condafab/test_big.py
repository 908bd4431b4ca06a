"""The benchmark-sized fixture (2,000 packages x 100 files x 10 envs): build time is printed,
not asserted (it depends on the disk and the machine's load).  Opt in with CONDAFAB_BIG=1."""

import os
import time

import pytest

from condafab.scale import build

from .ondisk import du, extracted_dirs, find_sizes


@pytest.mark.big
@pytest.mark.skipif(not os.environ.get("CONDAFAB_BIG"), reason="set CONDAFAB_BIG=1 to build the 2,000-package fixture")
def test_big_fixture_builds_and_adds_up(tmp_path):
    started = time.perf_counter()
    manifest = build(tmp_path, seed=1, packages=2000, files=100, envs=10)
    seconds = time.perf_counter() - started
    print(f"\n2000 packages x 100 files x 10 envs: {seconds:.1f} s wall, {os.times().user + os.times().system:.1f} s CPU")
    print(manifest.summary())
    cache = manifest.cache("/opt/conda/pkgs")
    real = manifest.real(cache.path)
    assert len(extracted_dirs(real)) == len(cache.extracted) > 1500
    assert cache.apparent_bytes == find_sizes(real, "f,l")
    assert cache.disk_bytes == du(real)
    assert sum(e.files for e in manifest.envs.values()) > 100_000
