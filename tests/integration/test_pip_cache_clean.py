"""pip_cache_clean over SSH on a fleet of its own: a multi-user host with real passwd accounts,
user-owned caches in their homes, root's module run with become.

Expected results come from the fixture manifest (which caches exist, whose they are) and from
``du``/``lstat`` on the host's tree from the controller, never from the module's own code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from condafab.pipcache import snapshot
from condafab.uvcache import UV, copy_cache, real_uv_cache, run_uv, tree, uv_env
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
                # What uv's own prune leaves: its buckets, the cached environment gone.
                assert left == sorted(UV_MARKERS + ["archive-v0", "builds-v0", "environments-v2", "interpreter-v5",
                                                    "sdists-v11", "wheels-v8"]), (path, left)
                assert os.listdir(cache / "environments-v2") == []
            assert all(owned[path][p] == o for p, o in owners(cache).items()), path
        # The plan's reclaimable bytes are what du sees go (no hard links out of these caches).
        assert result["planned_bytes"] == sum(used[p] - du(r) for p, r in real.items())

        again = fleet.run_module(host, MODULE, args, become=True)[host]
        assert (again["changed"], again["removed"]) == (False, [])


def as_user(fleet, host, user, command):
    """``command``'s stdout, run on the host as ``user`` (sudo -H: their home, their environment)."""
    done = fleet.ansible(host, "-m", "ansible.builtin.command", "-a", command, "--become", "--become-user", user, "-o")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.split("(stdout) ", 1)[1].strip()


def test_uv_caches_are_pruned_by_the_owners_uv_or_exactly_as_it_would(fleet_state_factory, tmp_path):
    with running(fleet_state_factory("uvclean"), 1, ("multi_user",), seed=5) as fleet:
        host = fleet.hosts[0]
        root = fleet.root_of(host)
        built = json.loads(fleet.manifest_of(host).read_text())["pip_results"]
        caches = {path.split("/")[2] if path.startswith("/home/") else "root": path
                  for path, manifest in built.items() if manifest["tool"] == "uv"}
        [user] = list(caches)
        # root gets one too (this layout gives root only a pip cache); root has no uv.
        caches["root"] = "/root/.cache/uv"
        real_uv_cache(root / "root/.cache/uv")
        real = {name: root / path.lstrip("/") for name, path in caches.items()}
        owner = os.lstat(real[user])
        # What an older uv leaves behind, for prune to find besides the cached environment.
        for name, cache in real.items():
            copy_cache(cache / "wheels-v8", cache / "wheels-v6")
            for path in [cache / "wheels-v6", *(cache / "wheels-v6").rglob("*")]:
                os.lchown(path, os.lstat(cache).st_uid, os.lstat(cache).st_gid)
        # The user installed uv the way uv's installer does; root has none on its PATH.
        binary = root / "home" / user / ".local/bin/uv"
        binary.parent.mkdir(parents=True)
        shutil.copy2(UV, binary)
        for path in (binary.parent.parent, binary.parent, binary):
            os.chown(path, owner.st_uid, owner.st_gid)

        # Facts agree with the user's own uv, run as them on the host.
        facts = fleet.run_module(host, "pkgcache.fleet.pip_cache_facts", "", become=True)[host]["ansible_facts"]["pip_cache"]
        uv = "/home/%s/.local/bin/uv" % user
        assert as_user(fleet, host, user, uv + " cache dir") == caches[user] == facts["users"][user]["uv"]["path"]
        size = as_user(fleet, host, user, uv + " cache size --preview-features cache-size --output-format machine")
        assert int(size) == facts["caches"][caches[user]]["usage"]["disk_bytes"]

        # The oracle: the controller's uv prunes copies.
        expected = {}
        for name, cache in real.items():
            theirs = copy_cache(cache, tmp_path / name)
            run_uv("cache", "prune", "--cache-dir", str(theirs), env=uv_env(tmp_path))
            expected[name] = tree(theirs)
        owned = {name: owners(cache) for name, cache in real.items()}

        args = json.dumps({"uv": "prune"})
        before = {name: tree(cache) for name, cache in real.items()}
        preview = fleet.ansible(host, "-m", MODULE, "-a", args, "--become", "--check", "--diff")
        assert preview.returncode == 0, preview.stdout + preview.stderr
        previewed = sorted(re.findall(r"^-(/\S+)  \(\d+(?:\.\d)? (?:B|KiB|MiB|GiB|TiB), .+\)$", preview.stdout, re.M))
        assert {name: tree(cache) for name, cache in real.items()} == before
        assert all(any(path.startswith(caches[name] + "/") for path in previewed) for name in real)

        result = fleet.run_module(host, MODULE, args, become=True)[host]
        assert not result.get("failed"), result
        by_path = {cache["path"]: cache for cache in result["caches"]}
        assert by_path[caches[user]]["cleaned_by"] == uv
        assert by_path[caches["root"]]["cleaned_by"] == "pkgcache.fleet"
        assert sorted(result["removed"]) == previewed
        for name, cache in real.items():
            assert tree(cache) == expected[name], name
            assert all(owned[name][p] == o for p, o in owners(cache).items()), name
        again = fleet.run_module(host, MODULE, args, become=True)[host]
        assert (again["changed"], again["removed"]) == (False, [])
