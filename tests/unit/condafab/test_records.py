"""PrefixRecords, histories and the root's conda record carry what conda writes."""

import json

from .ondisk import all_records, records

PREFIX_RECORD_KEYS = {
    "fn", "url", "channel", "md5", "sha256", "size", "name", "version", "build", "build_number", "subdir", "depends",
    "package_tarball_full_path", "extracted_package_dir", "files", "paths_data", "link", "requested_spec",
}


def test_every_prefix_record_has_conda_fields_and_matches_its_cache(small):
    seen = 0
    for _prefix, stem, record in all_records(small):
        assert PREFIX_RECORD_KEYS <= set(record)
        assert stem == f"{record['name']}-{record['version']}-{record['build']}"
        assert record["extracted_package_dir"].endswith("/" + stem) and record["link"]["source"] == record["extracted_package_dir"]
        assert record["package_tarball_full_path"] == record["extracted_package_dir"].rsplit("/", 1)[0] + "/" + record["fn"]
        assert record["files"] == [p["_path"] for p in record["paths_data"]["paths"]] and record["paths_data"]["paths_version"] == 1
        for entry in record["paths_data"]["paths"]:
            assert set(entry) == {"_path", "path_type", "sha256", "size_in_bytes"}
        cached = small.real(record["extracted_package_dir"]) / "info/repodata_record.json"
        if cached.exists():  # the PrefixRecord extends the cache's repodata record
            repodata = json.loads(cached.read_text())
            assert repodata == {k: record[k] for k in repodata}
        seen += 1
    assert seen > 20


def test_root_prefix_identifies_its_conda_version(small):
    (inst,) = small.installations
    root_records = records(small, inst.root)
    conda = [r for stem, r in root_records.items() if stem.startswith("conda-")]
    assert [r["version"] for r in conda] == [inst.conda_version]
    history = (small.real(inst.root) / "conda-meta/history").read_text()
    assert history.startswith("==> ") and f"# conda version: {inst.conda_version}" in history
    assert (small.real(inst.root) / "envs").is_dir()


def test_every_env_has_a_history_listing_its_packages(small):
    for env in small.envs.values():
        history = (small.real(env.prefix) / "conda-meta/history").read_text()
        linked = sorted(line.split("::", 1)[1] for line in history.splitlines() if line.startswith("+"))
        assert linked == sorted(env.packages) == sorted(records(small, env.prefix))
