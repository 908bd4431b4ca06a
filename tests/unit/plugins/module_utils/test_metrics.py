# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node_exporter textfile (issue 15): read back by Prometheus' own parser, each gauge equal to
the facts and clean results it came from, the last clean carried across runs that do not clean,
label values that survive any file name, and a file replaced whole."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from hypothesis import given, settings, strategies as st
from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.pkgcache.fleet.plugins.module_utils import metrics
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import printable, raw
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_facts import gather
from condafab.channel import file_channel
from condafab.host import HostBuilder
from condafab.layouts import DEFAULT_USERS

from .hostroot import host_users, in_root
from .test_conda_mamba import USERS as MAMBA_USERS, build as build_mamba
from .test_local_command import LINK, build, in_host
from .test_rattler_cache import install_home, lstat_bytes


def parse(text):
    """``{(metric, labels as a sorted tuple): value}``, read by the exposition-format parser."""
    samples = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge" and family.documentation
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, key
            assert sample.timestamp is None
            samples[key] = sample.value
    return samples


def read(directory):
    return parse((directory / metrics.FILENAME).read_text(encoding="utf-8"))


def gauge(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def host_json(fsroot, argv):
    code, out, err = in_host(fsroot, argv + ["--json"])
    assert code == 0, err
    return json.loads(out)


def test_each_cache_of_the_facts_is_a_gauge_of_its_size_and_reclaimable_bytes(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    facts = host_json(fsroot, ["facts"])
    out = tmp_path / "textfile"
    path, changed = metrics.write_textfile(str(out), facts, now=1700000000)
    assert changed and path == str(out / metrics.FILENAME)
    samples = read(out)
    conda = [c for c in facts["conda_cache"]["caches"] if c["exists"]]
    pip = facts["pip_cache"]["caches"]
    assert conda and {c["tool"] for c in pip.values()} == {"pip", "uv"}
    for cache in conda:
        labels = dict(tool="conda", path=cache["path"])
        assert gauge(samples, metrics.SIZE, **labels) == cache["disk_bytes"] > 0
        assert gauge(samples, metrics.RECLAIMABLE, **labels) == cache["reclaimable_bytes"]
        for category in ("tarballs", "unused", "index_cache", "logs", "trash", "partial", "locks"):
            assert gauge(samples, metrics.CATEGORY_RECLAIMABLE, category=category, **labels) == \
                cache["categories"][category]["reclaimable_bytes"]
    for cache_path, cache in pip.items():
        labels = dict(tool=cache["tool"], path=cache_path)
        assert gauge(samples, metrics.SIZE, **labels) == cache["usage"]["disk_bytes"]
        assert gauge(samples, metrics.RECLAIMABLE, **labels) == cache["usage"]["reclaimable_bytes"]
        for section, part in cache["sections"].items():
            assert gauge(samples, metrics.CATEGORY_RECLAIMABLE, category=section, **labels) == part["reclaimable_bytes"]
    # The real uv cache of the layout: labelled uv, its buckets as categories.
    assert any(key[0] == metrics.CATEGORY_RECLAIMABLE and ("tool", "uv") in key[1] and ("category", "wheels-v8") in key[1]
               for key in samples)
    sizes = [key for key in samples if key[0] == metrics.SIZE]
    assert len(sizes) == len(conda) + len(pip)
    assert not [key for key in samples if key[0] == metrics.LAST_CLEAN], "no clean yet, no clean time"


def test_a_clean_sets_its_tools_time_and_freed_bytes_which_later_runs_keep(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    out = tmp_path / "textfile"
    conda = host_json(fsroot, ["clean", "--targets", "tarballs"])
    pip = host_json(fsroot, ["clean-pip", "--purge", "--uv", "prune"])
    freed = dict((tool, sum(c["freed_bytes"] for r in (conda, pip) for c in r["caches"] if c["kind"] == tool))
                 for tool in ("conda", "pip", "uv"))
    assert freed["conda"] > 0 and freed["pip"] > 0
    facts = host_json(fsroot, ["facts"])
    metrics.write_textfile(str(out), facts, [conda, pip], now=1700000000)
    samples = read(out)
    for tool in ("conda", "pip", "uv"):
        assert gauge(samples, metrics.LAST_CLEAN, tool=tool) == 1700000000
        assert gauge(samples, metrics.LAST_REMOVED, tool=tool) == freed[tool]
    # A later facts-only run, and a clean that failed, leave the last successful clean in place.
    failed = dict(host_json(fsroot, ["clean", "--targets", "tarballs"]), failed=True)
    skipped = {"skipped": True, "changed": False}
    _path, changed = metrics.write_textfile(str(out), facts, [failed, skipped], now=1700009999)
    assert not changed
    assert read(out) == samples
    # The next successful clean of conda replaces conda's values only.
    again = host_json(fsroot, ["clean", "--targets", "tarballs"])
    metrics.write_textfile(str(out), facts, [again], now=1700100000)
    later = read(out)
    assert gauge(later, metrics.LAST_CLEAN, tool="conda") == 1700100000
    assert gauge(later, metrics.LAST_REMOVED, tool="conda") == 0
    assert gauge(later, metrics.LAST_CLEAN, tool="pip") == 1700000000
    assert gauge(later, metrics.LAST_REMOVED, tool="pip") == freed["pip"]


def test_the_file_is_replaced_whole_and_only_when_it_changes(tmp_path):
    facts = {"pip_cache": {"caches": {"/root/.cache/pip": {
        "tool": "pip", "usage": {"disk_bytes": 8192, "reclaimable_bytes": 4096}, "sections": {}}}}}
    out = tmp_path / "textfile"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.prom"
    elsewhere.write_text("keep me\n")
    (out / metrics.FILENAME).symlink_to(elsewhere)
    assert metrics.write_textfile(str(out), facts, check_mode=True)[1]
    assert (out / metrics.FILENAME).is_symlink(), "check mode writes nothing"
    assert metrics.write_textfile(str(out), facts)[1]
    target = out / metrics.FILENAME
    assert not target.is_symlink() and elsewhere.read_text() == "keep me\n", "a link there is replaced, not followed"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644), "the collector runs as another user"
    assert sorted(os.listdir(out)) == [metrics.FILENAME], "no temp file left behind"
    inode = target.stat().st_ino
    assert not metrics.write_textfile(str(out), facts, now=5)[1]
    assert target.stat().st_ino == inode
    facts["pip_cache"]["caches"]["/root/.cache/pip"]["usage"]["disk_bytes"] = 12288
    assert metrics.write_textfile(str(out), facts)[1]
    assert target.stat().st_ino != inode, "a new file renamed over the old one"
    assert gauge(read(out), metrics.SIZE, tool="pip", path="/root/.cache/pip") == 12288


# A path as a module returns it: the raw name (any bytes but NUL) made printable.
RAW_PATHS = st.one_of(
    st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b).map(os.fsdecode),
    st.text(alphabet=st.sampled_from('a/"\\\n\r\t {}=,#é'), min_size=1, max_size=40),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(RAW_PATHS, min_size=1, max_size=4, unique=True))
def test_any_cache_path_round_trips_through_the_exposition_format(raw_paths):
    paths = [printable(path) for path in raw_paths]
    facts = {"pip_cache": {"caches": dict(
        (path, {"tool": "pip", "usage": {"disk_bytes": index, "reclaimable_bytes": 0},
                "sections": {"wheels": {"reclaimable_bytes": index}}})
        for index, path in enumerate(paths))}}
    text = metrics.render(facts)
    text.encode("utf-8")  # valid UTF-8, no lone surrogate
    samples = parse(text)
    sizes = dict((dict(labels)["path"], value) for (name, labels), value in samples.items() if name == metrics.SIZE)
    assert sizes == dict((path, index) for index, path in enumerate(paths))
    assert sorted(raw(path) for path in sizes) == sorted(raw_paths)


def test_the_hand_picked_awkward_paths_round_trip():
    test_any_cache_path_round_trips_through_the_exposition_format.hypothesis.inner_test(
        [os.fsdecode(b'/home/a"b\\c\nd/\xff\xfe/.cache/pip'), "/x}y{z", '\\"\\n'])


def test_it_runs_with_the_hosts_python_and_no_ansible(tmp_path):
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        pytest.skip("no host python3")
    env = {"PYTHONPATH": str(LINK), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    if subprocess.run([python, "-c", "import ansible"], env=env, capture_output=True, check=False).returncode == 0:
        pytest.skip("the host python has Ansible; this test proves the writer needs none")
    script = ("import sys; from ansible_collections.pkgcache.fleet.plugins.module_utils import metrics; "
              "print(metrics.write_textfile(sys.argv[1], {}, [{'caches': [{'kind': 'conda', 'freed_bytes': 7}]}], 9)[1])")
    done = subprocess.run([python, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout == "True\n", done.stderr
    samples = read(tmp_path)
    assert gauge(samples, metrics.LAST_CLEAN, tool="conda") == 9 and gauge(samples, metrics.LAST_REMOVED, tool="conda") == 7


def test_a_scheduled_run_writes_the_textfile_with_what_it_freed_and_a_check_run_writes_nothing(tmp_path):
    """``pkgcache run --metrics-dir``: what the cache_schedule role runs.  The file says what the
    facts say after the run, and what each tool's clean freed; a check run leaves no file."""
    fsroot, _manifest = build(tmp_path, "multi_user")
    (fsroot / "policy.json").write_text(json.dumps({"clean": {"targets": ["tarballs", "packages"]}}))
    argv = ["run", "--policy", "/policy.json", "--json", "--metrics-dir", "/var/lib/node-exporter"]
    code, _out, err = in_host(fsroot, argv + ["--check"])
    assert code == 0, err
    assert not (fsroot / "var/lib/node-exporter" / metrics.FILENAME).exists()
    code, out, err = in_host(fsroot, argv)
    assert code == 0, err
    cleaned = json.loads(out)["clean"]
    samples = read(fsroot / "var/lib/node-exporter")
    freed = sum(cache["freed_bytes"] for cache in cleaned["caches"] if cache["kind"] == "conda")
    assert samples[("pkgcache_last_clean_removed_bytes", (("tool", "conda"),))] == freed > 0
    assert samples[("pkgcache_last_clean_timestamp_seconds", (("tool", "conda"),))] > 0
    code, out, err = in_host(fsroot, ["facts", "--json"])
    after = json.loads(out)["conda_cache"]
    for cache in after["caches"]:
        key = ("pkgcache_cache_size_bytes", (("path", cache["path"]), ("tool", "conda")))
        assert samples[key] == cache["disk_bytes"], key


def pixi_world(fsroot):
    """alice's pixi workspaces, a global tool and a deleted workspace, installed by py-rattler
    through her ``~/.cache/rattler/cache`` inside the fixture host and owned by her; the records
    name the host's paths (the tree's prefix cut, as moving it does).  The unused entries' paths
    in the host, their ``.lock`` files included."""
    pytest.importorskip("rattler")
    top = fsroot.parent / "pixi-channel"
    channel = file_channel(HostBuilder(top / "host", seed=21).catalog(packages=16, files=4), top / "channel")
    alice = [user for user in DEFAULT_USERS if user.name == "alice"][0]
    home = fsroot / alice.home.lstrip("/")
    pkgs, installed = install_home(channel, home)
    for record in home.rglob("conda-meta/*.json"):
        record.write_text(record.read_text().replace(str(fsroot), ""))
    for part in (".cache", ".pixi", "src"):
        subprocess.check_call(["chown", "-R", "%d:%d" % (alice.uid, alice.gid), str(home / part)])
    live = set(installed[str(home / "src/app/.pixi/envs/default")]) | set(installed[str(home / ".pixi/envs/tool")])
    gone = set(name for names in installed.values() for name in names) - live
    assert live and gone
    return pkgs, [str(pkgs / name) for name in sorted(gone)] + [str(pkgs / name) + ".lock" for name in sorted(gone)]


def test_rattler_caches_are_gauges_labelled_rattler_whose_reclaimable_bytes_are_the_unused_packages(tmp_path):
    fsroot, _manifest = build(tmp_path, "multi_user")
    _pkgs, unused = pixi_world(fsroot)
    facts = host_json(fsroot, ["facts", "--gather", "conda", "pip", "rattler"])
    [(root, cache)] = list(facts["rattler_cache"]["caches"].items())
    assert root == "/home/alice/.cache/rattler/cache" and cache["tool"] == "rattler"
    out = tmp_path / "textfile"
    metrics.write_textfile(str(out), facts)
    samples = read(out)
    labels = dict(tool="rattler", path=root)
    assert gauge(samples, metrics.SIZE, **labels) == cache["usage"]["disk_bytes"] > lstat_bytes(unused)
    # Measured here without the model: the unused entries and their locks, nothing else of the cache.
    assert gauge(samples, metrics.RECLAIMABLE, **labels) == cache["unused_reclaimable_bytes"] == lstat_bytes(unused)
    assert gauge(samples, metrics.CATEGORY_RECLAIMABLE, category="unused", **labels) == lstat_bytes(unused)
    tools = sorted(set(dict(key[1])["tool"] for key in samples if key[0] == metrics.SIZE))
    assert tools == ["conda", "pip", "rattler", "uv"]


def test_mamba_caches_are_gauges_labelled_mamba(tmp_path):
    fsroot, manifest = build_mamba(tmp_path)
    facts = {"conda_cache": in_root(fsroot, gather, host_users(MAMBA_USERS), env=manifest.environment)}
    mamba = [c for c in facts["conda_cache"]["caches"] if c["exists"] and c["tool"] == "mamba"]
    assert mamba
    out = tmp_path / "textfile"
    metrics.write_textfile(str(out), facts)
    samples = read(out)
    for cache in mamba:
        assert gauge(samples, metrics.SIZE, tool="mamba", path=cache["path"]) == cache["disk_bytes"] > 0
        assert gauge(samples, metrics.RECLAIMABLE, tool="mamba", path=cache["path"]) == cache["reclaimable_bytes"]


def test_a_scheduled_rattler_clean_is_recorded_and_its_metrics_say_what_it_freed(tmp_path):
    """``pkgcache run`` with a ``clean-rattler`` section: the unused packages go, the record
    names them, and the textfile has the rattler cache after the run and the clean's freed bytes."""
    fsroot, _manifest = build(tmp_path, "multi_user")
    _pkgs, unused = pixi_world(fsroot)
    planned = lstat_bytes(unused)
    unused_in_host = sorted("/" + os.path.relpath(path, str(fsroot)) for path in unused)
    (fsroot / "policy.json").write_text(json.dumps({"clean-rattler": {"users": ["alice"]}}))
    code, out, err = in_host(fsroot, ["run", "--policy", "/policy.json", "--json", "--record", "/var/lib/pkgcache/last-run.json",
                                      "--metrics-dir", "/var/lib/node-exporter"])
    assert code == 0, err
    done = json.loads(out)["clean-rattler"]
    assert sorted(done["removed"]) == unused_in_host
    assert not any(os.path.lexists(path) for path in unused)
    record = json.loads((fsroot / "var/lib/pkgcache/last-run.json").read_text())
    assert sorted(record["runs"]["clean-rattler"]["removed"]) == unused_in_host
    assert record["runs"]["clean-rattler"]["planned_bytes"] == done["planned_bytes"] == planned
    assert record["runs"]["clean-rattler"]["freed_bytes"] == sum(done["freed_bytes"].values())
    samples = read(fsroot / "var/lib/node-exporter")
    assert gauge(samples, metrics.LAST_REMOVED, tool="rattler") == sum(c["freed_bytes"] for c in done["caches"])
    after = host_json(fsroot, ["facts", "--gather", "rattler"])["rattler_cache"]["caches"]
    [(root, cache)] = list(after.items())
    assert gauge(samples, metrics.SIZE, tool="rattler", path=root) == cache["usage"]["disk_bytes"]
    assert gauge(samples, metrics.RECLAIMABLE, tool="rattler", path=root) == cache["unused_reclaimable_bytes"] == 0
