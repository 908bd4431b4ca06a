"""conda_pkgs_backup over SSH with become, on a fleet of its own (restores change caches).

Expected values come from the fixture manifests and from hashing each host's files from the
controller (``fleet.root_of(host)``), never from the module's own code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from test_conda_pkgs_dirs import call
from testfleet.fleet import running

LINK = Path(__file__).resolve().parents[2] / ".build" / "link"
DEST = "/srv/pkg-backup"
MODULE = "pkgcache.fleet.conda_pkgs_backup"


@pytest.fixture(autouse=True)
def collection_path(monkeypatch):
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(LINK))


@pytest.fixture(scope="module")
def backup_fleet(fleet_state_factory):
    """h1 multi_user (users' own caches), h2 relocated_pkgs (cache moved by config)."""
    with running(fleet_state_factory("backup"), 2, ("multi_user", "relocated_pkgs"), seed=21) as up:
        for host in up.hosts:
            (up.root_of(host) / DEST.lstrip("/")).mkdir(parents=True)
        yield up


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def built(fleet, host):
    return json.loads(fleet.manifest_of(host).read_text())


def tarball_paths(fleet, host):
    """In-host paths of every tarball the fixture put in a conda-writable cache."""
    return sorted("%s/%s" % (path, fn) for path, cache in built(fleet, host)["caches"].items()
                  if cache["writable"] for fn in cache["tarballs"])


def dist_of(fn):
    return fn[: -len(".conda")] if fn.endswith(".conda") else fn[: -len(".tar.bz2")]


def on_host(fleet, host, path: str) -> Path:
    return fleet.root_of(host) / path.lstrip("/")


def store_objects(fleet, host):
    root = on_host(fleet, host, DEST) / "store" / "sha256"
    return {p.name: sha256(p) for p in root.glob("*/*")}


def adhoc(fleet, host, tree, args, *flags):
    """``(exit code, result)`` of one ad hoc run with extra flags (``--check``, ``--diff``).
    ansible-core 2.19 keeps a task's failure out of the stored result, so the exit code says it."""
    env = dict(os.environ, ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
               ANSIBLE_CALLBACK_TREE_DIR=str(tree))
    done = fleet.ansible(host, "-m", MODULE, "-a", json.dumps(args), "--become", *flags, env=env)
    return done, json.loads((Path(tree) / host).read_text())


def run(fleet, host, **args):
    environment = built(fleet, host).get("environment") or {}
    args = dict({"dest": DEST, "environment": environment}, **args)
    results = fleet.run_module(host, MODULE, json.dumps(args), become=True)
    return results[host]


def test_backup_is_complete_verified_and_idempotent_over_ssh(backup_fleet):
    fleet = backup_fleet
    for host in fleet.hosts:
        expected = tarball_paths(fleet, host)
        first = run(fleet, host)
        assert first["rejected"] == [] and first["changed"] is True, (host, first.get("msg"))
        backed_up = sorted(c["source"] for c in first["copied"] + first["stored"])
        assert backed_up == expected, host
        hashes = {sha256(on_host(fleet, host, p)) for p in expected}
        assert store_objects(fleet, host) == {h: h for h in hashes}, host
        manifest = json.loads(on_host(fleet, host, first["manifest"]).read_text())
        assert manifest["host"] == host and Path(first["manifest"]).parent == Path(DEST, "manifests", host)
        second = run(fleet, host)
        assert second["changed"] is False and second["manifest"] is None, (host, second.get("msg"))
        assert second["unchanged"] == len(expected)


def test_check_mode_and_diff_over_ssh_write_nothing(backup_fleet, tmp_path):
    fleet = backup_fleet
    host = fleet.hosts[0]
    fresh = "/srv/pkg-backup-preview"
    on_host(fleet, host, fresh).mkdir(parents=True)
    done, result = adhoc(fleet, host, tmp_path, {"dest": fresh}, "--check", "--diff")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    expected = tarball_paths(fleet, host)
    assert result["changed"] is True and sorted(c["source"] for c in result["copied"]) == expected
    assert result["bytes_copied"] == sum(on_host(fleet, host, p).stat().st_size for p in expected)
    # The stdout callback shows the diff (the tree callback drops it from the stored result).
    assert all("+%s -> %s/store/sha256/" % (p, fresh) in done.stdout for p in expected), done.stdout[-2000:]
    assert list(on_host(fleet, host, fresh).iterdir()) == []


def test_restore_one_users_cache_gives_back_their_files_and_ownership(backup_fleet):
    fleet = backup_fleet
    host = fleet.hosts[0]  # multi_user
    run(fleet, host)
    cache = "/home/alice/.conda/pkgs"
    names = built(fleet, host)["caches"][cache]["tarballs"]
    before = {fn: sha256(on_host(fleet, host, cache + "/" + fn)) for fn in names}
    for fn in names:
        os.unlink(on_host(fleet, host, cache + "/" + fn))
    restored = run(fleet, host, state="restored", pkgs_dirs=[cache])
    assert restored["rejected"] == [] and restored["cache"] == cache, restored.get("msg")
    assert sorted(r["fn"] for r in restored["restored"]) == sorted(names)
    assert restored["record_mismatch"] == []
    owner = os.stat(on_host(fleet, host, cache))
    for fn in names:
        path = on_host(fleet, host, cache + "/" + fn)
        assert sha256(path) == before[fn]
        assert (os.stat(path).st_uid, os.stat(path).st_gid) == (owner.st_uid, owner.st_gid)
        record = on_host(fleet, host, "%s/%s/info/repodata_record.json" % (cache, dist_of(fn)))
        if record.exists():
            assert json.loads(record.read_text())["sha256"] == before[fn]
    again = run(fleet, host, state="restored", pkgs_dirs=[cache])
    assert again["changed"] is False and again["present"] == len(names)


def test_verified_over_ssh_fails_only_when_asked(backup_fleet, tmp_path):
    fleet = backup_fleet
    host = fleet.hosts[1]
    run(fleet, host)
    clean = run(fleet, host, state="verified")
    assert clean["changed"] is False and clean["corrupt"] == [] and clean["missing"] == []
    victim = sorted((on_host(fleet, host, DEST) / "store" / "sha256").glob("*/*"))[0]
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    lenient, report = adhoc(fleet, host, tmp_path / "lenient", {"dest": DEST, "state": "verified"})
    assert lenient.returncode == 0 and [c["sha256"] for c in report["corrupt"]] == [victim.name]
    strict, report = adhoc(fleet, host, tmp_path / "strict", {"dest": DEST, "state": "verified", "fail_on_mismatch": True})
    assert strict.returncode != 0 and [c["sha256"] for c in report["corrupt"]] == [victim.name]
    victim.write_bytes(data)


def test_a_store_carried_to_another_host_is_not_copied_twice(backup_fleet):
    """As with a shared NFS store: h1's backup is carried to h2, which has three of h1's
    tarballs too; h2 then stores only what the store lacks."""
    fleet = backup_fleet
    h1, h2 = fleet.hosts
    run(fleet, h1)
    target_cache = sorted(p for p, c in built(fleet, h2)["caches"].items() if c["writable"])[0]
    taken = set(os.listdir(on_host(fleet, h2, target_cache)))
    # Packages h2 does not have (fixed names like python differ in content between seeds).
    by_hash = {sha256(on_host(fleet, h1, p)): p for p in tarball_paths(fleet, h1)
               if not {os.path.basename(p), dist_of(os.path.basename(p))} & taken}
    shared = sorted(by_hash.values())[:3]
    for path in shared:
        shutil.copy2(on_host(fleet, h1, path), on_host(fleet, h2, target_cache + "/" + os.path.basename(path)))
    carried = on_host(fleet, h2, "/srv/shared-backup")
    shutil.copytree(on_host(fleet, h1, DEST), carried)
    before = store_objects(fleet, h1)
    result = run(fleet, h2, dest="/srv/shared-backup")
    assert result["rejected"] == [], result["msg"]
    shared_hashes = {sha256(on_host(fleet, h1, p)) for p in shared}
    assert shared_hashes <= set(before)
    copied = {c["sha256"] for c in result["copied"]}
    assert not copied & shared_hashes
    assert shared_hashes <= {c["sha256"] for c in result["stored"]}
    assert sorted(p.name for p in (carried / "manifests").iterdir()) == [h1, h2]


def test_damaged_store_objects_are_repaired_over_ssh(backup_fleet, tmp_path):
    """Issue 13, reproduction 6: a truncated object, and one with a flipped byte whose tarball is
    read again, used to stay broken behind "already stored"; now check mode predicts the repair,
    the run replaces both with the verified tarball and records it, and ``verified`` is clean."""
    fleet = backup_fleet
    host = fleet.hosts[0]
    dest = "/srv/pkg-backup-heal"
    on_host(fleet, host, dest).mkdir(parents=True)
    first = run(fleet, host, dest=dest)
    assert first["rejected"] == [], first["msg"]
    by_hash = {sha256(on_host(fleet, host, p)): p for p in tarball_paths(fleet, host)}
    truncated, flipped = sorted(by_hash)[:2]
    objects = on_host(fleet, host, dest) / "store" / "sha256"
    victim = objects / truncated[:2] / truncated
    with open(victim, "r+b") as handle:
        handle.truncate(victim.stat().st_size // 2)
    other = objects / flipped[:2] / flipped
    data = other.read_bytes()
    other.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    os.utime(on_host(fleet, host, by_hash[flipped]))  # touched: the next run reads it again
    args = {"dest": dest, "environment": built(fleet, host).get("environment") or {}}
    done, preview = adhoc(fleet, host, tmp_path / "preview", args, "--check")
    assert done.returncode == 0 and preview["changed"] is True, done.stdout[-2000:]
    assert sorted(r["sha256"] for r in preview["repaired"]) == [truncated, flipped] and preview["copied"] == []
    assert "would repair 2 damaged object(s)" in preview["msg"]
    assert sha256(victim) != truncated and sha256(other) != flipped
    healed = run(fleet, host, dest=dest)
    assert healed["changed"] is True and healed["rejected"] == [], healed["msg"]
    assert sorted(r["sha256"] for r in healed["repaired"]) == [truncated, flipped]
    assert sha256(victim) == truncated and sha256(other) == flipped
    manifest = json.loads(on_host(fleet, host, healed["manifest"]).read_text())
    assert sorted(r["sha256"] for r in manifest["repaired"]) == [truncated, flipped]
    report = run(fleet, host, dest=dest, state="verified")
    assert report["corrupt"] == [] and report["missing"] == [], report["msg"]
    assert run(fleet, host, dest=dest)["changed"] is False


# -- environments in the backup (issue 17) --------------------------------------------------------

ENVS_DIR = "/opt/envs"


def expected_missing(fleet, host):
    """``{prefix: sorted dists}`` of each known environment's packages no backed-up cache holds as a
    tarball (the fixture's answer key; contents are equal across caches of one host)."""
    fixture = built(fleet, host)
    held = {dist_of(fn) for cache in fixture["caches"].values() if cache["writable"] for fn in cache["tarballs"]}
    return {prefix: sorted(d for d in env["packages"] if d not in held)
            for prefix, env in fixture["envs"].items() if env["known"]}


def rattler_rebuild(kit: Path, explicit: Path, target: Path, cache: Path):
    """What ``conda create --offline --file explicit`` does on the host, done by py-rattler from the
    controller: the explicit file's packages, as the kit's channel (file://) describes them, installed
    with no solve and no network."""
    import asyncio

    import rattler

    urls = [line.split("#", 1)[0] for line in explicit.read_text().splitlines() if line.startswith("file://")]
    wanted = {url.rsplit("/", 1)[1] for url in urls}
    channel = rattler.Channel("file://%s/channel" % kit)
    records = []
    for subdir in sorted(p.name for p in (kit / "channel").iterdir()):
        repodata = rattler.SparseRepoData(channel, subdir, kit / "channel" / subdir / "repodata.json")
        for name in repodata.package_names():
            records.extend(r for r in repodata.load_records(rattler.PackageName(name)) if r.file_name in wanted)
    assert sorted(r.file_name for r in records) == sorted(wanted)
    asyncio.run(rattler.install(records, target_prefix=target, cache_dir=cache, show_progress=False))


def test_environments_rebuilt_offline_on_an_empty_host_pass_the_health_check(fleet_state_factory, tmp_path):
    """h1's environments (every user's) are recorded with the backup; incomplete ones are named with
    exactly the packages the store lacks.  The backup alone, carried to an empty h2, rebuilds the
    complete ones there: the module builds the restore kit (no conda on h2: needs_conda), py-rattler
    plays conda's part offline from the kit, and conda_env_facts on h2 finds every rebuilt environment
    healthy with the packages it had on h1."""
    with running(fleet_state_factory("envbackup"), 2, ("multi_user", "bare"), seed=17) as fleet:
        h1, h2 = fleet.hosts
        on_host(fleet, h1, DEST).mkdir(parents=True)
        first = run(fleet, h1)
        assert first["rejected"] == [], first["msg"]
        recorded = {e["prefix"]: e for e in first["environments"]}
        missing = expected_missing(fleet, h1)
        assert sorted(recorded) == sorted(missing)
        assert {p: sorted(dist_of(fn) for fn in e["missing"]) for p, e in recorded.items()} == missing
        assert any(missing.values()) and not all(missing.values()), "the fixture needs both kinds"
        assert all(e["complete"] == (not missing[p]) and e["unreadable"] == [] for p, e in recorded.items())
        manifest = json.loads(on_host(fleet, h1, first["manifest"]).read_text())
        assert manifest["format"] == 2
        for environment in manifest["environments"]:
            meta = on_host(fleet, h1, environment["prefix"]) / "conda-meta"
            records = [json.loads(p.read_text()) for p in meta.glob("*.json")]
            assert sorted((p["url"], p["md5"], p["sha256"]) for p in environment["explicit"]) == sorted(
                (r["url"], r["md5"], r["sha256"]) for r in records)
            assert environment["requested"] == recorded[environment["prefix"]]["requested"] != []
        assert run(fleet, h1)["changed"] is False

        shutil.copytree(on_host(fleet, h1, DEST), on_host(fleet, h2, DEST))
        complete = sorted(p for p, dists in missing.items() if not dists)
        by_name = {}
        for prefix in recorded:
            by_name.setdefault(recorded[prefix]["name"], []).append(prefix)
        unique = sorted(name for name, prefixes in by_name.items() if len(prefixes) == 1)
        args = {"dest": DEST, "state": "restored", "host_id": h1, "environments": ["*"], "environments_dir": ENVS_DIR}
        preview = call(fleet, h2, args, tmp_path, check=True, module=MODULE)
        assert not preview["failed"] and preview["changed"] is True, preview.get("msg")
        assert not on_host(fleet, h2, DEST + "/restore").exists() and not on_host(fleet, h2, ENVS_DIR).exists()
        actions = {e["prefix"]: e["action"] for e in preview["environments"]}
        assert actions == {p: "needs_conda" if recorded[p]["name"] in unique and p in complete else "rejected"
                           for p in recorded}
        planned = preview["diff"]["after"].splitlines()
        assert all(e["explicit"] in planned for e in preview["environments"] if e["action"] == "needs_conda")

        done = call(fleet, h2, args, tmp_path, module=MODULE)
        assert done["changed"] is True and done["installer"] is None, done.get("msg")
        results = {e["prefix"]: e for e in done["environments"]}
        rejected = {p: e["reason"] for p, e in results.items() if e["action"] == "rejected"}
        assert all(r.startswith("incomplete in the backup: missing ") for p, r in rejected.items() if p not in complete)
        kit = on_host(fleet, h2, done["kit"])
        colliding = [p for p in complete if results[p]["action"] == "rejected"]
        assert colliding and all("at the same target" in results[p]["reason"] for p in colliding)
        calls = [args]
        for prefix in colliding:  # named by prefix, each into a directory of its own
            calls.append(dict(args, environments=[prefix], environments_dir="%s/%s" % (ENVS_DIR, prefix.split("/")[2])))
            alone = call(fleet, h2, calls[-1], tmp_path, module=MODULE)
            assert alone["changed"] is True and alone["kit"] == done["kit"], alone.get("msg")
            results[prefix] = alone["environments"][0]
        rebuilt = {}
        for prefix in complete:
            entry = results[prefix]
            assert entry["action"] == "needs_conda", entry
            assert entry["command"] == "conda create --offline --yes --prefix %s/%s --file %s" % (
                os.path.dirname(entry["target"]), recorded[prefix]["name"], entry["explicit"])
            target = on_host(fleet, h2, entry["target"])
            rattler_rebuild(kit, on_host(fleet, h2, entry["explicit"]), target, on_host(fleet, h2, "/var/cache/rattler"))
            rebuilt[entry["target"]] = prefix
        assert len(rebuilt) == len(complete) >= 3
        # conda create registers what it makes; so does the test for py-rattler.
        registry = on_host(fleet, h2, "/root/.conda/environments.txt")
        registry.parent.mkdir(parents=True, exist_ok=True)
        registry.write_text("".join(t + "\n" for t in sorted(rebuilt)))

        found = fleet.run_module(h2, "pkgcache.fleet.conda_env_facts", json.dumps({"mode": "full"}),
                                 become=True)[h2]["ansible_facts"]["conda_envs"]
        by_path = {e["path"]: e for e in found["environments"]}
        assert sorted(by_path) == sorted(rebuilt)
        for target, prefix in rebuilt.items():
            health = by_path[target]["health"]
            assert health["healthy"] and health["hashed_files"] > 0, (target, health)
            assert set(os.path.basename(p)[:-5] for p in (on_host(fleet, h2, target) / "conda-meta").glob("*.json")) == \
                set(built(fleet, h1)["envs"][prefix]["packages"])

        present = []
        for again in (call(fleet, h2, a, tmp_path, module=MODULE) for a in calls):
            assert again["changed"] is False, again.get("msg")
            present += [e["target"] for e in again["environments"] if e["action"] == "present"]
        assert sorted(present) == sorted(rebuilt)
