# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Environments in conda_pkgs_backup, run as Ansible runs it on a condafab host tree
(``backup_host``): what the manifest records, incomplete environments, old manifests, and the
restore kit's refusals, check mode and idempotence.  The offline rebuild itself (py-rattler from
the kit) is proven over SSH in ``tests/integration/test_conda_pkgs_backup.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from unit.plugins.modules.backup_host import build_host, run_module


@pytest.fixture
def host(tmp_path):
    found = build_host(tmp_path)
    found["web"] = os.path.join(found["root"], "envs", "web")
    found["args"] = dict(dest=found["dest"], roots=[found["root"]], host_id="h1")
    return found


def tree(path):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in Path(path).rglob("*") if p.is_file()}


def records(prefix):
    meta = Path(prefix, "conda-meta")
    return {p.name: json.loads(p.read_text()) for p in meta.glob("*.json")}


def restore(tmp_path, host, **args):
    return run_module(tmp_path, dest=host["dest"], host_id="h1", state="restored", **args)


def test_manifest_records_each_environment_as_conda_list_explicit_would(tmp_path, host):
    result = run_module(tmp_path, **host["args"])
    assert sorted(e["prefix"] for e in result["environments"]) == [host["root"], host["web"]]
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["format"] == 2
    web = [e for e in manifest["environments"] if e["prefix"] == host["web"]][0]
    found = records(host["web"]).values()
    assert sorted((p["fn"], p["url"], p["md5"], p["sha256"], p["size"], p["depends"]) for p in web["explicit"]) == \
        sorted((r["fn"], r["url"], r["md5"], r["sha256"], r["size"], r["depends"]) for r in found)
    assert all("files" not in p and "link" not in p for p in web["explicit"])
    history = Path(host["web"], "conda-meta", "history").read_text()
    assert web["requested"] and all(repr(spec) in history for spec in web["requested"])
    assert web["missing"] == [] and web["unreadable"] == [] and web["name"] == "web" and web["platform"] == "linux-64"


def test_environment_without_its_tarball_in_the_store_is_incomplete_with_which(tmp_path, host):
    victim = sorted(records(host["web"]).values(), key=lambda r: r["fn"])[1]
    os.unlink(os.path.join(host["cache"], victim["fn"]))
    zeroed = Path(host["root"], "conda-meta", sorted(records(host["root"]))[0])
    zeroed.write_bytes(bytes(zeroed.stat().st_size))
    result = run_module(tmp_path, **host["args"])
    by_prefix = {e["prefix"]: e for e in result["environments"]}
    assert by_prefix[host["web"]]["missing"] == [victim["fn"]] and by_prefix[host["web"]]["complete"] is False
    assert by_prefix[host["root"]]["unreadable"] == [zeroed.name[:-5]] and by_prefix[host["root"]]["complete"] is False
    assert "2 incomplete in the store" in result["msg"]
    refused = restore(tmp_path, host, environments=["*"], environments_dir=str(tmp_path / "new"))
    assert {e["name"]: e["action"] for e in refused["environments"]} == {"base": "rejected", "web": "rejected"}
    assert [e["reason"] for e in refused["environments"] if e["name"] == "web"] == [
        "incomplete in the backup: missing %s" % victim["fn"]]
    assert refused["changed"] is False and not (tmp_path / "new").exists()
    assert not Path(host["dest"], "restore").exists()


def test_a_record_without_sha256_is_matched_by_md5(tmp_path, host):
    path = Path(host["web"], "conda-meta", sorted(records(host["web"]))[0])
    record = json.loads(path.read_text())
    sha256 = record.pop("sha256")
    path.write_text(json.dumps(record))
    result = run_module(tmp_path, **host["args"])
    web = [e for e in json.loads(Path(result["manifest"]).read_text())["environments"] if e["prefix"] == host["web"]][0]
    assert web["missing"] == [] and [p["sha256"] for p in web["explicit"] if p["fn"] == record["fn"]] == [sha256]


def test_a_format_1_manifest_is_still_read_and_the_next_run_records_environments(tmp_path, host):
    first = run_module(tmp_path, **host["args"])
    path = Path(first["manifest"])
    old = json.loads(path.read_text())
    old["format"] = 1
    del old["environments"]
    path.write_text(json.dumps(old))
    verified = run_module(tmp_path, dest=host["dest"], host_id="h1", state="verified", manifest=str(path))
    assert verified["missing"] == [] and verified["corrupt"] == [], verified
    second = run_module(tmp_path, **host["args"])
    assert second["changed"] is True and second["copied"] == [] and second["manifest"] != first["manifest"]
    assert len(json.loads(Path(second["manifest"]).read_text())["environments"]) == 2
    assert run_module(tmp_path, **host["args"])["changed"] is False


def test_kit_check_mode_writes_nothing_then_kit_is_built_once(tmp_path, host):
    run_module(tmp_path, **host["args"])
    before = tree(host["dest"])
    target = tmp_path / "new"
    args = dict(environments=["web"], environments_dir=str(target), installer=None)
    preview = restore(tmp_path, host, _ansible_check_mode=True, _ansible_diff=True, **args)
    assert preview["changed"] is True and tree(host["dest"]) == before and not target.exists()
    [web] = preview["environments"]
    fns = sorted(r["fn"] for r in records(host["web"]).values())
    kit = Path(preview["kit"])
    planned = preview["diff"]["after"].splitlines()
    assert sorted(os.path.basename(p) for p in planned if "/channel/" in p) == fns and web["explicit"] in planned
    done = restore(tmp_path, host, **args)
    assert done["changed"] is True and done["environments"] == preview["environments"]
    assert web["action"] == "needs_conda" and web["command"] == "conda create --offline --yes --prefix %s --file %s" % (
        target / "web", web["explicit"])
    lines = Path(web["explicit"]).read_text().splitlines()
    assert lines[:4] == ["# This file may be used to create an environment using:",
                         "# $ conda create --name <env> --file <this file>", "# platform: linux-64", "@EXPLICIT"]
    by_fn = {r["fn"]: r for r in records(host["web"]).values()}
    assert lines[4:] == ["file://%s/channel/%s/%s#%s" % (kit, by_fn[fn]["subdir"], fn, by_fn[fn]["md5"]) for fn in fns]
    for fn in fns:
        placed = kit / "channel" / by_fn[fn]["subdir"] / fn
        assert hashlib.sha256(placed.read_bytes()).hexdigest() == by_fn[fn]["sha256"]
        repodata = json.loads((placed.parent / "repodata.json").read_text())
        assert repodata["packages.conda" if fn.endswith(".conda") else "packages"][fn]["sha256"] == by_fn[fn]["sha256"]
    again = restore(tmp_path, host, **args)
    assert again["changed"] is False and again["environments"] == done["environments"]


def test_existing_target_with_other_packages_is_left_alone_and_exact_one_is_present(tmp_path, host):
    run_module(tmp_path, **host["args"])
    occupied = tmp_path / "new" / "web"
    (occupied / "conda-meta").mkdir(parents=True)
    (occupied / "conda-meta" / "other-1.0-0.json").write_text(json.dumps({"fn": "other-1.0-0.conda"}))
    before = tree(occupied)
    result = restore(tmp_path, host, environments=[host["web"]], environments_dir=str(tmp_path / "new"),
                     fail_on_mismatch=True)
    assert result["failed"] is True and tree(occupied) == before
    assert "target exists and is not this environment" in result["environments"][0]["reason"]
    present = restore(tmp_path, host, environments=[host["web"]])
    assert present["changed"] is False and present["environments"][0]["action"] == "present"


def test_unknown_or_ambiguous_names_and_corrupt_objects_are_clear_errors(tmp_path, host):
    first = run_module(tmp_path, **host["args"])
    unknown = restore(tmp_path, host, environments=["nope"])
    assert unknown["failed"] is True and "environment 'nope' is not in manifest" in unknown["msg"]
    path = Path(first["manifest"])
    manifest = json.loads(path.read_text())
    twin = dict(manifest["environments"][1], prefix="/elsewhere/envs/web")
    manifest["environments"].append(twin)
    path.write_text(json.dumps(manifest))
    ambiguous = restore(tmp_path, host, environments=["web"])
    assert ambiguous["failed"] is True and "ambiguous" in ambiguous["msg"] and "/elsewhere/envs/web" in ambiguous["msg"]
    sha256 = manifest["environments"][1]["explicit"][0]["sha256"]
    victim = Path(host["dest"], "store", "sha256", sha256[:2], sha256)
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    corrupt = restore(tmp_path, host, environments=["/elsewhere/envs/web"])
    assert corrupt["failed"] is True and "corrupt" in corrupt["msg"] and str(victim) in corrupt["msg"]
    assert not Path(host["dest"], "restore", "h1", path.stem, "web-%s.txt" % hashlib.sha1(
        b"/elsewhere/envs/web").hexdigest()[:8]).exists()


def test_the_installer_runs_only_where_nobody_but_root_can_change_the_way_to_the_target(tmp_path, host):
    """The installer follows symlinks on the way to its prefix and writes as root: a target under a
    directory a user owns, or in one where anyone may create the name first, is rejected before it
    runs (``false`` stands for an installer: had it run, the reason would say it exited 1)."""
    if os.geteuid() != 0:
        pytest.skip("needs root, as a restore with become runs")
    run_module(tmp_path, **host["args"])
    users = tmp_path / "home-of-uid-1234"
    users.mkdir()
    os.chown(str(users), 1234, 1234)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(str(shared), 0o1777)
    false = shutil.which("false")
    for place, reason in ((users, "uid 1234 can change where %s/web leads" % users),
                          (shared, "others may create names in %s" % shared)):
        for check in (True, False):
            result = restore(tmp_path, host, environments=["web"], environments_dir=str(place), installer=false,
                             _ansible_check_mode=check)
            [web] = result["environments"]
            assert web["action"] == "rejected" and reason in web["reason"], web
            assert not (place / "web").exists()
    ours = tmp_path / "ours"
    ours.mkdir()
    ran = restore(tmp_path, host, environments=["web"], environments_dir=str(ours), installer=false)
    assert ran["environments"][0]["reason"] == "false exited 1"


def test_a_relative_target_is_judged_from_the_directory_it_resolves_in(tmp_path, monkeypatch):
    from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_envs import foreign_target
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(str(shared), 0o1777)
    monkeypatch.chdir(str(shared))
    assert foreign_target("envs/web") == "others may create names in %s, the target's first existing directory" % shared
