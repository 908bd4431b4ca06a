"""Keep the builder honest: a real installer (py-rattler) installs the same archives from a local
channel, and its PrefixRecords must have the shape of the ones condafab writes by hand."""

import json
from pathlib import Path

import pytest

from condafab.channel import file_channel, rattler_install
from condafab.host import HostBuilder

from .ondisk import records

rattler = pytest.importorskip("rattler")

# Known, documented differences: conda writes the tarball path and `requested_spec` (a string);
# rattler writes neither, and `requested_specs` (a list) instead.
CONDA_ONLY = {"package_tarball_full_path", "requested_spec"}
RATTLER_ONLY = {"requested_specs"}


def test_prefix_records_have_rattlers_shape(tmp_path):
    host = HostBuilder(tmp_path / "host", seed=21)
    catalog = host.catalog(packages=16, files=4)
    channel = file_channel(catalog, tmp_path / "channel")
    fns = rattler_install(channel, ["python", "git", "numpy", "conda"], tmp_path / "rattler-env", tmp_path / "rattler-pkgs")
    chosen = [p for p in catalog.packages if p.fn in fns]
    assert len(chosen) == len(fns) >= 5
    inst = host.install("/opt/conda", catalog)
    for pkg in chosen:
        if pkg.dist not in inst.cache.extracted:
            inst.cache.add(pkg)
    host.env("/opt/conda/envs/same", chosen, inst.cache)
    manifest = host.finish()

    ours = records(manifest, "/opt/conda/envs/same")
    theirs = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "rattler-env/conda-meta").glob("*.json")}
    assert sorted(ours) == sorted(theirs)
    for dist, mine in ours.items():
        real = theirs[dist]
        assert set(mine) - set(real) <= CONDA_ONLY and set(real) - set(mine) <= RATTLER_ONLY, dist
        assert mine["link"]["type"] == real["link"]["type"] == 1
        for key in ("md5", "sha256", "size", "files", "depends", "build", "build_number", "subdir", "timestamp", "fn"):
            assert mine[key] == real[key], (dist, key)
        by_path = {e["_path"]: e for e in real["paths_data"]["paths"]}
        assert mine["paths_data"]["paths"] == [by_path[e["_path"]] for e in mine["paths_data"]["paths"]]
        # rattler extracting the same archive gets the files condafab wrote into pkgs/
        ignore = {"info/repodata_record.json"}  # conda's addition after extraction
        assert _files(real["extracted_package_dir"]) - ignore == _files(manifest.real(mine["extracted_package_dir"])) - ignore


def _files(top):
    return {p.relative_to(top).as_posix() for p in Path(top).rglob("*") if p.is_file()}
