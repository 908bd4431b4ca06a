"""Keep the builder honest: a real installer (py-rattler) installs the same archives from a local
channel, and its PrefixRecords must have the shape of the ones condafab writes by hand."""

import asyncio
import json
from pathlib import Path

import pytest

from condafab.host import HostBuilder
from condafab.packages import dumps

from .ondisk import records

rattler = pytest.importorskip("rattler")

# Known, documented differences: conda writes the tarball path and `requested_spec` (a string);
# rattler writes neither, and `requested_specs` (a list) instead.
CONDA_ONLY = {"package_tarball_full_path", "requested_spec"}
RATTLER_ONLY = {"requested_specs"}


def _channel(catalog, top):
    """A file:// channel serving the catalog's archives, with repodata.json per subdir."""
    repodata = {sub: {"info": {"subdir": sub}, "packages": {}, "packages.conda": {}, "repodata_version": 1} for sub in ("linux-64", "noarch")}
    for pkg in catalog.packages:
        (top / pkg.subdir).mkdir(parents=True, exist_ok=True)
        (top / pkg.subdir / pkg.fn).write_bytes(pkg.archive.data)
        entry = dict(pkg.index_json(), md5=pkg.archive.md5, sha256=pkg.archive.sha256, size=pkg.archive.size)
        repodata[pkg.subdir]["packages.conda" if pkg.ext == ".conda" else "packages"][pkg.fn] = entry
    for sub, data in repodata.items():
        (top / sub).mkdir(parents=True, exist_ok=True)
        (top / sub / "repodata.json").write_bytes(dumps(data))
    return top.as_uri()


async def _rattler_install(channel, specs, prefix, cache_dir):
    solved = await rattler.solve(sources=[channel], specs=specs, platforms=["linux-64", "noarch"])
    await rattler.install(solved, target_prefix=prefix, cache_dir=cache_dir, show_progress=False)
    return [r.file_name for r in solved]


def test_prefix_records_have_rattlers_shape(tmp_path):
    host = HostBuilder(tmp_path / "host", seed=21)
    catalog = host.catalog(packages=16, files=4)
    channel = _channel(catalog, tmp_path / "channel")
    fns = asyncio.run(_rattler_install(channel, ["python", "git", "numpy", "conda"], tmp_path / "rattler-env", tmp_path / "rattler-pkgs"))
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
