# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda_env_facts logic on real fixture hosts: healthy environments of every link type report
nothing, and each kind of damage done to the files is reported exactly, where it was done."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import os
import subprocess

import pytest

from condafab.layouts import DEFAULT_USERS, LAYOUTS, ROOT_USER
from condafab.manifest import COPY, HARDLINK, SOFTLINK

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_envs import gather
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import History, spec_name

from .hostroot import host_users, in_root

USERS = [ROOT_USER] + list(DEFAULT_USERS)
LINK_NAMES = {HARDLINK: "hardlink", SOFTLINK: "softlink", COPY: "copy"}
NO_PROBLEMS = {"missing": 0, "dangling": 0, "altered": 0, "corrupt_records": 0, "not_in_history": 0, "not_in_records": 0}


def build(tmp_path, layout, seed=7):
    fsroot = tmp_path / "host"
    return fsroot, LAYOUTS[layout](fsroot, seed, list(DEFAULT_USERS))


def facts_in(fsroot, mode="fast"):
    return in_root(fsroot, gather, host_users(USERS), mode=mode)


def env_named(facts, prefix):
    return next(e for e in facts["environments"] if e["path"] == prefix)


def du(path):
    return int(subprocess.check_output(["du", "-s", "--block-size=1", str(path)]).split()[0])


def record(manifest, prefix, dist):
    return json.loads((manifest.real(prefix) / "conda-meta" / (dist + ".json")).read_text())


def payload(manifest, prefix, only_in=True):
    """``(dist, relative path)`` of a payload file of ``prefix`` whose package no other
    environment of the host has (so damage to a shared inode cannot show elsewhere)."""
    elsewhere = set(d for p, e in manifest.envs.items() if p != prefix for d in e.packages)
    for dist in sorted(manifest.envs[prefix].packages):
        files = record(manifest, prefix, dist)["files"]
        if files and (not only_in or dist not in elsewhere):
            return dist, sorted(files)[0]
    raise AssertionError("no payload file in %s" % prefix)


def assert_only(facts, prefix, problems, **listed):
    """``prefix`` is the one unhealthy environment, with exactly ``problems`` and ``listed``."""
    assert facts["unhealthy"] == [prefix]
    for env in facts["environments"]:
        health = env["health"]
        if env["path"] != prefix:
            assert health["healthy"] and health["problems"] == NO_PROBLEMS, env
            continue
        assert not health["healthy"]
        assert health["problems"] == dict(NO_PROBLEMS, **problems)
        for kind in NO_PROBLEMS:
            assert health[kind] == listed.get(kind, []), kind


@pytest.mark.parametrize("mode", ["fast", "full"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_healthy_environments_of_every_link_type_report_nothing(tmp_path, layout, mode):
    fsroot, manifest = build(tmp_path, layout)
    facts = facts_in(fsroot, mode)
    known = sorted(p for p, e in manifest.envs.items() if e.known)
    assert sorted(e["path"] for e in facts["environments"]) == known
    assert facts["unhealthy"] == [] and facts["warnings"] == [] and facts["totals"]["unhealthy"] == 0
    for env in facts["environments"]:
        intended = manifest.envs[env["path"]]
        health = env["health"]
        assert health["healthy"] and health["problems"] == NO_PROBLEMS and health["history_checked"], env
        assert env["package_count"] == len(intended.packages)
        assert env["link_types"] == {LINK_NAMES[intended.link_type]: len(intended.packages)}
        # Every payload file is looked at, and in full mode every one is hashed.
        files = sum(len(record(manifest, env["path"], d)["files"]) for d in intended.packages)
        assert health["checked_files"] == files > 0
        assert health["hashed_files"] == (files if mode == "full" else 0)
        assert health["sha256_checked"] is (mode == "full")


def test_sizes_caches_and_last_change(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    facts = facts_in(fsroot)
    for prefix in ("/opt/conda/envs/web", "/opt/conda/envs/tools"):
        env = env_named(facts, prefix)
        size = env["size"]
        assert size["disk_bytes"] == du(manifest.real(prefix))
        assert size["exclusive_bytes"] + size["shared_bytes"] == size["disk_bytes"]
        history = os.lstat(manifest.real(prefix) / "conda-meta/history").st_mtime
        assert env["last_change"]["timestamp"] == int(history)
        assert env["caches"] == [{"path": "/opt/conda/pkgs", "configured": True, "packages": env["package_count"],
                                  "soft_linked": 0, "extracted_present": env["caches"][0]["extracted_present"],
                                  "needed_at_runtime": False}]
    # Copied files are the environment's alone; hard-linked ones share their blocks with the cache.
    tools, web = env_named(facts, "/opt/conda/envs/tools")["size"], env_named(facts, "/opt/conda/envs/web")["size"]
    assert tools["shared_bytes"] == 0 and tools["exclusive_bytes"] == tools["disk_bytes"]
    assert web["shared_bytes"] > 0
    # The root prefix is sized without the environments and the cache inside it.
    root = env_named(facts, "/opt/conda")
    assert root["root"] == "/opt/conda"
    assert root["size"]["disk_bytes"] < du(manifest.real("/opt/conda")) - du(manifest.real("/opt/conda/pkgs"))


def test_a_soft_linked_environment_depends_on_its_cache_at_run_time(tmp_path):
    fsroot, manifest = build(tmp_path, "softlinked_env")
    linked = env_named(facts_in(fsroot), "/opt/conda/envs/linked")
    count = len(manifest.envs["/opt/conda/envs/linked"].packages)
    assert linked["caches"] == [{"path": "/opt/conda/pkgs", "configured": True, "packages": count, "soft_linked": count,
                                 "extracted_present": count, "needed_at_runtime": True}]


def test_a_deleted_file_is_missing(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    prefix = "/opt/conda/envs/web"
    dist, path = payload(manifest, prefix)
    (manifest.real(prefix) / path).unlink()
    for mode in ("fast", "full"):
        assert_only(facts_in(fsroot, mode), prefix, {"missing": 1}, missing=[{"package": dist, "path": path}])


def test_a_soft_link_whose_cache_file_is_gone_is_dangling(tmp_path):
    fsroot, manifest = build(tmp_path, "softlinked_env")
    prefix = "/opt/conda/envs/linked"
    dist, path = payload(manifest, prefix)
    (manifest.real("/opt/conda/pkgs") / dist / path).unlink()
    target = "/opt/conda/pkgs/%s/%s" % (dist, path)
    assert_only(facts_in(fsroot), prefix, {"dangling": 1},
                dangling=[{"package": dist, "path": path, "target": target}])


def test_a_truncated_file_is_altered_in_both_modes(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    prefix = "/opt/conda/envs/tools"  # copied
    dist, path = payload(manifest, prefix, only_in=False)
    real = manifest.real(prefix) / path
    size = real.stat().st_size
    os.truncate(real, size // 2)
    for mode in ("fast", "full"):
        assert_only(facts_in(fsroot, mode), prefix, {"altered": 1}, altered=[
            {"package": dist, "path": path, "reason": "size %d, recorded %d" % (size // 2, size)}])


def test_a_truncated_cache_file_breaks_the_soft_linked_environment(tmp_path):
    fsroot, manifest = build(tmp_path, "softlinked_env")
    prefix = "/opt/conda/envs/linked"
    dist, path = payload(manifest, prefix)
    real = manifest.real("/opt/conda/pkgs") / dist / path
    size = real.stat().st_size
    os.truncate(real, 1)
    assert_only(facts_in(fsroot), prefix, {"altered": 1}, altered=[
        {"package": dist, "path": path, "reason": "size 1, recorded %d" % size}])


@pytest.mark.parametrize("prefix, layout", [("/opt/conda/envs/web", "single_root"),
                                            ("/opt/conda/envs/tools", "single_root"),
                                            ("/opt/conda/envs/linked", "softlinked_env")],
                         ids=["hardlink", "copy", "softlink"])
def test_an_altered_file_of_the_same_size_is_found_only_in_full_mode(tmp_path, prefix, layout):
    fsroot, manifest = build(tmp_path, layout)
    dist, path = payload(manifest, prefix, only_in=layout == "single_root")
    real = manifest.real(prefix) / path
    if layout == "softlinked_env":
        real = manifest.real("/opt/conda/pkgs") / dist / path
    data = real.read_bytes()
    # A new inode: the cache's hard link (and other environments) keep the old bytes.
    fresh = real.with_name(real.name + ".new")
    fresh.write_bytes(bytes(b ^ 0xFF for b in data[:1]) + data[1:])
    os.rename(fresh, real)
    assert facts_in(fsroot, "fast")["unhealthy"] == []
    assert_only(facts_in(fsroot, "full"), prefix, {"altered": 1},
                altered=[{"package": dist, "path": path, "reason": "sha256 differs"}])


def test_a_zeroed_record_is_a_corrupt_record_named_in_a_warning_not_a_crash(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    prefix = "/opt/conda/envs/ml"
    dist, _path = payload(manifest, prefix, only_in=False)
    path = manifest.real(prefix) / "conda-meta" / (dist + ".json")
    size = path.stat().st_size
    path.write_bytes(bytes(size))
    facts = facts_in(fsroot, "full")
    in_host = "%s/conda-meta/%s.json" % (prefix, dist)
    assert_only(facts, prefix, {"corrupt_records": 1}, corrupt_records=[in_host])
    assert facts["warnings"] == ["%s: corrupt PrefixRecord (zeroed: %d bytes, all NUL); its files cannot be checked"
                                 % (in_host, size)]
    env = env_named(facts, prefix)
    assert env["package_count"] == len(manifest.envs[prefix].packages)  # the record still counts
    assert env["link_types"]["unknown"] == 1


def test_history_and_records_disagreeing_is_reported_both_ways(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    prefix = "/opt/conda/envs/web"
    dist = sorted(manifest.envs[prefix].packages)[0]
    history = manifest.real(prefix) / "conda-meta/history"
    with open(history, "a") as handle:
        handle.write("==> 2024-05-01 10:00:00 <==\n# cmd: conda install ghost\n"
                     "-conda-forge/linux-64::%s\n+conda-forge/noarch::ghost-1.0-pyh_0\n" % dist)
    assert_only(facts_in(fsroot), prefix, {"not_in_history": 1, "not_in_records": 1},
                not_in_history=[dist], not_in_records=["ghost-1.0-pyh_0"])


def test_history_replay_and_requested_specs():
    text = (
        "==> 2016-01-01 00:00:00 <==\n"
        "python-2.7.11-0\nzlib-1.2.8-0\n"  # conda before 4.4: the whole state
        "# install specs: python 2.7*, zlib\n"
        "==> 2017-01-01 00:00:00 <==\n# cmd: conda update python\n"
        "-python-2.7.11-0\n+defaults::python-2.7.13-0\n"
        "==> 2024-01-01 00:00:00 <==\n# update specs: ['conda-forge::numpy >=1.26', 'pandas[version=\\'>=2\\']']\n"
        "+conda-forge/linux-64::numpy-1.26.4-py311h_0\n-zlib-1.2.8-0\n"
        "# remove specs: ['zlib']\n"
    )
    history = History(io.StringIO(text))
    assert history.installed == {"python-2.7.13-0", "numpy-1.26.4-py311h_0"}
    assert history.requested == {"python": "python 2.7*", "numpy": "conda-forge::numpy >=1.26", "pandas": "pandas[version='>=2']"}
    assert History(io.StringIO("")).installed is None
    empty = History(io.StringIO("==> 2024-01-01 00:00:00 <==\n# cmd: micromamba create\n"))
    assert empty.installed is None and empty.requested == {}
    assert [spec_name(s) for s in ("python=3.11", "conda-forge/linux-64::NumPy", "a_b-c>=1,<2", "x|y")] == [
        "python", "numpy", "a_b-c", "x"]


def write_env(root, prefix, packages, history):
    """An environment of records only: ``packages`` is ``[(name, depends)]``, version 1.0, build 0."""
    meta = root / prefix.lstrip("/") / "conda-meta"
    meta.mkdir(parents=True)
    for name, depends in packages:
        record = {"name": name, "version": "1.0", "build": "0", "depends": depends, "files": [],
                  "link": {"type": 1, "source": "/opt/conda/pkgs/%s-1.0-0" % name}}
        (meta / ("%s-1.0-0.json" % name)).write_text(json.dumps(record))
    (meta / "history").write_text(history)


def test_orphans_are_what_no_requested_spec_needs_any_more(tmp_path):
    fsroot, _manifest = build(tmp_path, "single_root")
    prefix = "/opt/conda/envs/proj"
    write_env(fsroot, prefix, [
        ("app", ["lib >=1", "__glibc >=2.17"]), ("lib", ["python 3.11.*"]), ("python", []), ("pip", ["python"]),
        ("tool", ["helper"]), ("helper", []), ("leftover", [])], (
        "==> 2024-01-01 00:00:00 <==\n# cmd: conda create -p x app tool\n"
        + "".join("+conda-forge/linux-64::%s-1.0-0\n" % n for n in ("app", "lib", "python", "pip", "tool", "helper", "leftover"))
        + "# update specs: ['app', 'tool', 'gone']\n"
        "==> 2024-02-01 00:00:00 <==\n# cmd: conda remove tool\n# remove specs: ['tool']\n"))
    facts = facts_in(fsroot)
    env = env_named(facts, prefix)
    assert env["health"]["healthy"], env["health"]
    # pip is python's (conda's add_pip_as_python_dependency); a virtual package is no package.
    assert env["orphans"] == {"checked": True, "requested": ["app"],
                              "packages": ["helper-1.0-0", "leftover-1.0-0", "tool-1.0-0"]}


def test_orphans_are_not_guessed_with_a_corrupt_record_or_no_requested_spec(tmp_path):
    fsroot, _manifest = build(tmp_path, "single_root")
    history = "==> 2024-01-01 00:00:00 <==\n+a-1.0-0\n+b-1.0-0\n"
    write_env(fsroot, "/opt/conda/envs/unasked", [("a", []), ("b", [])], history)
    write_env(fsroot, "/opt/conda/envs/broken", [("a", []), ("b", [])], history + "# update specs: ['a']\n")
    (fsroot / "opt/conda/envs/broken/conda-meta/a-1.0-0.json").write_bytes(b"\0" * 10)
    facts = facts_in(fsroot)
    for prefix in ("/opt/conda/envs/unasked", "/opt/conda/envs/broken"):
        assert env_named(facts, prefix)["orphans"] == {"checked": False, "requested": [], "packages": []}


def test_an_empty_history_is_not_compared(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    prefix = "/opt/conda/envs/web"
    (manifest.real(prefix) / "conda-meta/history").write_text("")
    facts = facts_in(fsroot)
    assert facts["unhealthy"] == []
    assert env_named(facts, prefix)["health"]["history_checked"] is False


def test_a_record_naming_a_path_outside_the_environment_is_not_followed(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    prefix = "/opt/conda/envs/web"
    dist, _path = payload(manifest, prefix)
    path = manifest.real(prefix) / "conda-meta" / (dist + ".json")
    data = json.loads(path.read_text())
    data["files"].append("../../../../etc/passwd")
    path.write_text(json.dumps(data))
    facts = facts_in(fsroot, "full")
    assert facts["unhealthy"] == []
    assert [w for w in facts["warnings"] if "etc/passwd" in w and "not a path inside the environment" in w]


def test_a_directory_leading_out_of_the_environment_is_not_hashed(tmp_path):
    fsroot, manifest = build(tmp_path, "single_root")
    prefix = "/opt/conda/envs/tools"
    dist, path = payload(manifest, prefix, only_in=False)
    real = manifest.real(prefix) / path
    outside = fsroot / "srv/elsewhere"
    outside.mkdir(parents=True)
    # The file's directory becomes a symlink to a copy outside: same bytes, not the environment's.
    os.rename(real.parent, outside / "moved")
    os.symlink("/srv/elsewhere/moved", real.parent)
    facts = facts_in(fsroot, "full")
    assert any(w.startswith("%s/%s: its directory leads outside" % (prefix, path)) for w in facts["warnings"])
    assert env_named(facts, prefix)["health"]["hashed_files"] < env_named(facts, prefix)["health"]["checked_files"]


def test_mode_is_checked():
    with pytest.raises(ValueError):
        gather([], mode="quick")
