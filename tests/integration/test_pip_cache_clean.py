"""pip_cache_clean over SSH on a fleet of its own: a multi-user host with real passwd accounts,
user-owned caches in their homes, root's module run with become.

Expected results come from the fixture manifest (which caches exist, whose they are) and from
``du``/``lstat`` on the host's tree from the controller, never from the module's own code.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from condafab.pipcache import snapshot
from testfleet.fleet import running

LINK = Path(__file__).resolve().parents[2] / ".build" / "link"
MODULE = "pkgcache.fleet.pip_cache_clean"
UV_MARKERS = [".gitignore", ".lock", "CACHEDIR.TAG"]


@pytest.fixture(autouse=True)
def collection_path(monkeypatch):
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(LINK))


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sx", "--block-size=1", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def owners(root: Path) -> dict:
    return {str(p): (os.lstat(p).st_uid, os.lstat(p).st_gid) for p in [root, *root.rglob("*")]}


def homes(root: Path) -> dict:
    state = {}
    for home in (root / "home", root / "root"):
        state.update(snapshot(home))
    return {path: value for path, value in state.items() if "/.ansible/" not in path + "/"}


def test_preview_refusal_purge_and_nothing_left_to_do(fleet_state_factory):
    with running(fleet_state_factory("pipclean"), 1, ("multi_user",), seed=3) as fleet:
        host = fleet.hosts[0]
        root = fleet.root_of(host)
        built = json.loads(fleet.manifest_of(host).read_text())["pip_results"]
        tools = {path: manifest["tool"] for path, manifest in built.items()}
        assert sorted(tools.values()).count("pip") >= 3 and "uv" in tools.values()
        real = {path: root / path.lstrip("/") for path in built}
        args = json.dumps({"purge": True, "uv": "prune"})

        fleet.run_module(host, "ansible.builtin.ping", become=True)  # ~/.ansible exists before judging
        before, owned, used = homes(root), {p: owners(r) for p, r in real.items()}, {p: du(r) for p, r in real.items()}
        preview = fleet.ansible(host, "-m", MODULE, "-a", args, "--become", "--check", "--diff")
        assert preview.returncode == 0, preview.stdout + preview.stderr
        assert "would remove" in preview.stdout and "--- before: pip/uv caches" in preview.stdout
        # One diff line per item: path, size on disk, reason.
        previewed = sorted(re.findall(r"^-(/\S+)  \(\d+(?:\.\d)? (?:B|KiB|MiB|GiB|TiB), .+\)$", preview.stdout, re.M))
        assert previewed, preview.stdout
        assert homes(root) == before
        refused = fleet.ansible(host, "-m", MODULE, "-a", json.dumps({"users": ["alice", "nobody-by-that-name"], "purge": True}),
                                "--become")
        assert refused.returncode != 0 and "unknown user(s): nobody-by-that-name" in refused.stdout, refused.stdout
        assert homes(root) == before

        result = fleet.run_module(host, MODULE, args, become=True)[host]
        assert not result.get("failed"), result
        assert sorted(result["removed"]) == previewed
        assert {c["path"] for c in result["caches"]} == set(built)
        for path, cache in real.items():
            left = sorted(os.listdir(cache))
            if tools[path] == "pip":
                assert left == ["selfcheck"], (path, left)
            else:
                assert left == sorted(UV_MARKERS + ["archive-v0", "interpreter-v4", "sdists-v9", "simple-v24",
                                                    "wheels-v6"]), (path, left)
                assert all(os.listdir(cache / b) in ([], [".git", ".gitignore"]) for b in left if b not in UV_MARKERS)
            assert all(owned[path][p] == o for p, o in owners(cache).items()), path
        # The plan's reclaimable bytes are what du sees go (no hard links out of these caches).
        assert result["planned_bytes"] == sum(used[p] - du(r) for p, r in real.items())

        again = fleet.run_module(host, MODULE, args, become=True)[host]
        assert (again["changed"], again["removed"]) == (False, [])
