"""The fleet layouts: each builds fast and holds the situation it is named after."""

import json
import os
import time

import pytest
import yaml

from condafab.layouts import DEFAULT_USERS, LAYOUTS
from condafab.manifest import SOFTLINK

from .ondisk import has_multilink, records


def _build(tmp_path, name, **options):
    started = time.perf_counter()
    manifest = LAYOUTS[name](tmp_path, 5, list(DEFAULT_USERS), **options)
    print(f"{name}: {time.perf_counter() - started:.2f} s")
    return manifest


def _conda_versions(manifest):
    return {inst.root: [r["version"] for s, r in records(manifest, inst.root).items() if s.startswith("conda-")] for inst in manifest.installations}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_layout_builds_registered_envs_and_parseable_config(tmp_path, name):
    manifest = _build(tmp_path, name)
    assert manifest.layout == name and manifest.installations
    for inst in manifest.installations:
        # a micromamba root has no conda, and no base environment to hold it
        assert _conda_versions(manifest)[inst.root] == ([inst.conda_version] if inst.tool == "conda" else [])
        assert (manifest.real(inst.pkgs_dir) / "urls.txt").is_file()
    for cache in manifest.caches.values():  # every cache shows every state a cleaner must handle
        for key in ("tarball_only", "extracted_only", "orphans", "unused_tarballs", "partial", "locks", "index_cache", "trash", "logs"):
            assert getattr(cache, key), (cache.path, key)
    for user in manifest.users.values():
        listed = (manifest.real(user.home) / ".conda/environments.txt").read_text().split()
        assert listed == user.environments_txt
        assert all((manifest.real(e) / "conda-meta/history").is_file() for e in listed if e not in user.stale_entries)
    for path, text in manifest.condarc.items():
        assert manifest.real(path).read_text() == text
        yaml.safe_load(text)
    assert not manifest.malformed_condarc


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership is applied only when building as root")
def test_user_things_belong_to_the_user(tmp_path):
    manifest = _build(tmp_path, "multi_user")
    for user in DEFAULT_USERS:
        for path in (f"{user.home}/.conda/pkgs", f"{user.home}/.conda/envs/daily/conda-meta/history", f"{user.home}/.conda/environments.txt"):
            st = os.lstat(manifest.real(path))
            assert (st.st_uid, st.st_gid) == (user.uid, user.gid), path
    assert os.lstat(manifest.real("/opt/conda/pkgs")).st_uid == 0


def test_multi_user_has_hidden_env_nonstandard_envs_final_config_and_pip_caches(tmp_path):
    manifest = _build(tmp_path, "multi_user")
    hidden = [e for e in manifest.envs.values() if not e.known]
    assert [e.prefix for e in hidden] == ["/srv/scratch/old-env"]
    assert not any(e.prefix in u.environments_txt for u in manifest.users.values() for e in hidden)
    finals = [path for path, text in manifest.condarc.items() if "#!final" in text]
    assert finals == ["/etc/conda/condarc.d/50-caches.yml"]
    for user in manifest.users.values():
        assert user.expected_pkgs_dirs == ["/opt/conda/pkgs", f"{user.home}/.conda/pkgs"]
        assert any(not e.startswith(f"{user.home}/.conda/envs") and not e.startswith("/opt/conda") for e in user.environments_txt)
        assert user.stale_entries and not manifest.real(user.stale_entries[0]).exists()
        assert manifest.real(user.pip_cache).is_dir()
    assert sum(1 for u in manifest.users.values() if u.uv_cache and manifest.real(u.uv_cache).is_dir()) == 1


def test_two_installs_have_different_conda_versions_and_owners(tmp_path):
    manifest = _build(tmp_path, "two_installs")
    versions = _conda_versions(manifest)
    assert versions == {"/opt/miniconda3": ["23.11.0"], "/home/alice/miniforge3": ["24.11.3"]}
    assert {i.root: i.owner for i in manifest.installations} == {"/opt/miniconda3": None, "/home/alice/miniforge3": "alice"}


def test_relocated_pkgs_live_in_data_and_the_environment_says_so(tmp_path):
    manifest = _build(tmp_path, "relocated_pkgs")
    assert list(manifest.caches) == ["/data/conda-pkgs"] and not manifest.real("/opt/conda/pkgs").exists()
    assert 'CONDA_PKGS_DIRS="/data/conda-pkgs"' in manifest.real("/etc/environment").read_text().splitlines()
    assert yaml.safe_load(manifest.real("/opt/conda/.condarc").read_text())["pkgs_dirs"] == ["/data/conda-pkgs"]
    for env in manifest.envs.values():
        for record in records(manifest, env.prefix).values():
            assert record["extracted_package_dir"].startswith("/data/conda-pkgs/")


def test_softlinked_env_packages_look_unused_to_nlink_but_are_referenced(tmp_path):
    manifest = _build(tmp_path, "softlinked_env")
    cache = manifest.cache("/opt/conda/pkgs")
    assert [e.prefix for e in manifest.envs.values() if e.link_type == SOFTLINK] == ["/opt/conda/envs/linked"]
    plain = [d for d in cache.softlink_only if d not in cache.internal_hardlink + cache.metadata_only]
    assert len(plain) >= 3
    for dist in plain:
        assert not has_multilink(manifest.real(f"{cache.path}/{dist}"))  # all that conda clean -p looks at
        assert cache.referenced_by[dist] == ["/opt/conda/envs/linked"]


def test_malformed_condarc_only_when_asked(tmp_path):
    manifest = _build(tmp_path, "single_root", malformed=True)
    (path,) = manifest.malformed_condarc
    assert path == f"{DEFAULT_USERS[-1].home}/.condarc"
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(manifest.real(path).read_text())


def test_manifest_json_round_trips(tmp_path):
    manifest = _build(tmp_path, "multi_user")
    out = tmp_path / "manifest.json"
    manifest.to_json(out)
    data = json.loads(out.read_text())
    assert data["caches"]["/opt/conda/pkgs"]["counts"] == manifest.cache("/opt/conda/pkgs").counts
    assert set(data["envs"]) == set(manifest.envs)
