"""Every package file in a cache is a real archive, and the records quote its real hashes."""

import hashlib
import json

from conda_package_handling import api as cph

from .ondisk import extracted_dirs, tarballs

ROOT_PKGS = "/opt/conda/pkgs"


def _dist(fn):
    return fn[: -len(".conda")] if fn.endswith(".conda") else fn[: -len(".tar.bz2")]


def _files(top):
    return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


def test_each_tarball_extracts_with_conda_tooling_to_what_the_cache_holds(small, tmp_path):
    cache = small.cache(ROOT_PKGS)
    real = small.real(cache.path)
    fns = tarballs(real)
    assert fns == cache.tarballs and any(f.endswith(".conda") for f in fns) and any(f.endswith(".tar.bz2") for f in fns)
    for fn in fns:
        out = tmp_path / fn
        cph.extract(str(real / fn), dest_dir=str(out))
        index = json.loads((out / "info/index.json").read_text())
        assert f"{index['name']}-{index['version']}-{index['build']}" == _dist(fn)
        for entry in json.loads((out / "info/paths.json").read_text())["paths"]:
            data = (out / entry["_path"]).read_bytes()
            assert (hashlib.sha256(data).hexdigest(), len(data)) == (entry["sha256"], entry["size_in_bytes"])
        if _dist(fn) in cache.extracted:
            in_cache = _files(real / _dist(fn))
            del in_cache["info/repodata_record.json"]  # written by conda after extraction
            assert _files(out) == in_cache


def test_repodata_record_quotes_the_archive_md5_sha256_size_and_url(small):
    cache = small.cache(ROOT_PKGS)
    real = small.real(cache.path)
    urls = (real / "urls.txt").read_text().split()
    checked = 0
    for dist in extracted_dirs(real):
        record = json.loads((real / dist / "info/repodata_record.json").read_text())
        assert record["url"] == f"{record['channel']}/{record['fn']}" and record["url"] in urls
        assert record["channel"].endswith("/" + record["subdir"])
        tarball = real / record["fn"]
        if tarball.exists():
            data = tarball.read_bytes()
            assert record["md5"] == hashlib.md5(data).hexdigest()
            assert record["sha256"] == hashlib.sha256(data).hexdigest()
            assert record["size"] == len(data) == cache.tarball_bytes[record["fn"]]
            checked += 1
        else:
            assert dist in cache.extracted_only
    assert checked > 10 and cache.extracted_only and cache.tarball_only


def test_conda_v2_layout_and_partial_download(small):
    import zipfile  # pylint: disable=import-outside-toplevel

    cache = small.cache(ROOT_PKGS)
    real = small.real(cache.path)
    fn = next(f for f in cache.tarballs if f.endswith(".conda"))
    with zipfile.ZipFile(real / fn) as zf:
        names = zf.namelist()
        assert json.loads(zf.read("metadata.json")) == {"conda_pkg_format_version": 2}
    assert sorted(names) == sorted(["metadata.json", f"pkg-{_dist(fn)}.tar.zst", f"info-{_dist(fn)}.tar.zst"])
    (partial,) = cache.partial
    assert (real / partial).is_file() and partial[: -len(".partial")] not in cache.tarballs
