"""pip_cache_facts over the SSH fleet: real passwd databases, real homes, several users a host.

Expected numbers come from the fixture manifests (what ``condafab.pipcache`` wrote on each host)
and from ``du`` run on the host's tree from the controller, never from the module's own code.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from condafab.pipcache import snapshot

LINK = Path(__file__).resolve().parents[2] / ".build" / "link"
MODULE = "pkgcache.fleet.pip_cache_facts"


@pytest.fixture(autouse=True)
def collection_path(monkeypatch):
    """The fleet drives the ansible CLI, which must find this collection however pytest is run."""
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(LINK))


def facts_of(fleet, pattern="all", args=None):
    # No arguments at all is the facts-module case: every option has a default.
    results = fleet.run_module(pattern, MODULE, json.dumps(args) if args else "", become=True)
    for host, result in results.items():
        # ansible-core 2.19's tree callback drops ``failed`` from a failed result: look for success.
        assert "ansible_facts" in result, (host, result)
    return results


def pip_manifest(fleet, host):
    """``{in-host cache path: fixture manifest}`` and ``{user: (pip path, uv path)}`` for a host."""
    path = fleet.manifest_of(host)
    if not path.exists():
        return {}, {}
    data = json.loads(path.read_text())
    users = {name: (record.get("pip_cache"), record.get("uv_cache")) for name, record in data["users"].items()}
    return data.get("pip_results", {}), users


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sx", "--block-size=1", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def test_every_users_caches_with_the_numbers_the_fixture_built(fleet):
    results = facts_of(fleet)
    checked = 0
    for host in fleet.hosts:
        built, owners = pip_manifest(fleet, host)
        facts = results[host]["ansible_facts"]["pip_cache"]
        for user, (pip_path, uv_path) in owners.items():
            for tool, path in (("pip", pip_path), ("uv", uv_path)):
                if path is None:
                    continue
                assert facts["users"][user][tool]["path"] == path, (host, user)
                assert user in facts["caches"][path]["users"]
        for path, manifest in built.items():
            cache = facts["caches"][path]
            assert cache["tool"] == manifest["tool"]
            assert cache["usage"]["apparent_bytes"] == manifest["apparent_bytes"], (host, path)
            assert cache["usage"]["disk_bytes"] == du(fleet.root_of(host) / path.lstrip("/")), (host, path)
            for section, expected in manifest["sections"].items():
                got = cache["sections"]["other" if section == "root" else section]
                assert (got["items"], got["apparent_bytes"]) == (expected["items"], expected["apparent_bytes"]), (host, path, section)
                assert (got["oldest_mtime"], got["newest_mtime"]) == (expected["oldest_mtime"], expected["newest_mtime"])
            checked += 1
        assert facts["totals"]["pip"]["disk_bytes"] == sum(c["usage"]["disk_bytes"] for c in facts["caches"].values() if c["tool"] == "pip")
    # The layouts give root and several users caches; a run that compared nothing proves nothing.
    assert checked >= 3


def multi_user_host(fleet):
    for host in fleet.hosts:
        _built, owners = pip_manifest(fleet, host)
        if sum(1 for pip_path, _uv in owners.values() if pip_path) >= 2:
            return host, owners
    pytest.skip("no fleet host with two users' pip caches")
    return None


def homes_state(root: Path) -> dict:
    """Snapshot of every home, minus Ansible's own remote temp dirs (``~/.ansible``), which the
    connection itself creates and cleans on each run."""
    state = {}
    for home in (root / "home", root / "root"):
        state.update(snapshot(home))
    return {path: value for path, value in state.items() if "/.ansible/" not in path + "/"}


def test_a_run_leaves_every_home_byte_and_metadata_identical(fleet):
    host, _owners = multi_user_host(fleet)
    # Let the connection create its own ~/.ansible first, so only the module's run is judged.
    fleet.run_module(host, "ansible.builtin.ping", become=True)
    before = homes_state(fleet.root_of(host))
    assert any("/.cache/pip/http-v2/" in path for path in before)
    facts_of(fleet, host)
    assert homes_state(fleet.root_of(host)) == before


def warnings_of(fleet, host, args=None):
    """The warnings Ansible prints for one ad hoc run (its results no longer carry them)."""
    argv = [host, "-m", MODULE, "--become"] + (["-a", json.dumps(args)] if args else [])
    done = fleet.ansible(*argv)
    assert done.returncode == 0, done.stdout + done.stderr
    return " ".join((done.stdout + done.stderr).split())


def test_malformed_user_config_is_a_warning_and_the_rest_is_reported(fleet):
    host, owners = multi_user_host(fleet)
    victim = sorted(user for user, (pip_path, _uv) in owners.items() if pip_path and user != "root")[0]
    in_host = "/home/%s/.config/pip/pip.conf" % victim
    conf = fleet.root_of(host) / in_host.lstrip("/")
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("[global\ncache-dir = /nowhere\n")
    try:
        printed = warnings_of(fleet, host)
        result = facts_of(fleet, host)[host]
    finally:
        conf.unlink()
    assert "[WARNING]: pip configuration file %s could not be read" % in_host in printed
    facts = result["ansible_facts"]["pip_cache"]
    assert facts["users"][victim]["pip"]["path"] == owners[victim][0]
    assert {user for user, (pip_path, _uv) in owners.items() if pip_path} <= set(facts["users"])


def test_users_option_limits_and_an_unknown_name_is_an_error(fleet):
    host, owners = multi_user_host(fleet)
    wanted = sorted(user for user, (pip_path, _uv) in owners.items() if pip_path)[0]
    result = facts_of(fleet, host, {"users": [wanted]})[host]
    assert sorted(result["ansible_facts"]["pip_cache"]["users"]) == [wanted]
    refused = fleet.ansible(host, "-m", MODULE, "--become", "-a", json.dumps({"users": [wanted, "nobody-by-that-name"]}))
    assert refused.returncode != 0 and "unknown user(s): nobody-by-that-name" in refused.stdout, refused.stdout


def test_a_vanished_home_is_a_warning_and_the_other_users_are_reported(fleet):
    host, owners = multi_user_host(fleet)
    with_pip = sorted(user for user, (pip_path, _uv) in owners.items() if pip_path and user != "root")
    gone, kept = with_pip[0], with_pip[1:]
    home = fleet.root_of(host) / "home" / gone
    away = home.with_name(gone + ".away")
    home.rename(away)
    try:
        printed = warnings_of(fleet, host)
        facts = facts_of(fleet, host)[host]["ansible_facts"]["pip_cache"]
    finally:
        away.rename(home)
    assert "[WARNING]: home directory /home/%s of user %s does not exist" % (gone, gone) in printed
    assert gone not in facts["users"]
    assert all(facts["users"][user]["pip"]["exists"] for user in kept)
