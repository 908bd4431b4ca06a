# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""conda_backup on real caches built by condafab: sharing, incrementality, verification, restore,
pruning, the offline channel, and failures (bad dest, full disk, SIGKILL).

Expected values come from the fixture files themselves (hashed here with hashlib) and from the
packages' own ``repodata_record.json``, never from the code under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from condafab.host import HostBuilder
from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import NO_KERNEL_COPY
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import mount_of
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup import run_backup
from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_backup_restore
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import Identity
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_restore import RESTORE_TMP_SUFFIX, run_restore, verify
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import BackupError, Store
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_cache import PackageCache
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import Warnings

TARBALL = (".conda", ".tar.bz2")
REPO = Path(__file__).resolve().parents[4]


# -- fixtures and oracles ---------------------------------------------------------------------

def build_cache(fsroot, packages=slice(None), tarball_only=2, seed=5):
    """``/opt/conda`` under ``fsroot`` with the base packages plus ``catalog.packages[packages]``;
    the last ``tarball_only`` of those have no extracted dir (no repodata record).  Returns the
    cache's controller path."""
    host = HostBuilder(fsroot, seed)
    catalog = host.catalog(24, 6)
    inst = host.install("/opt/conda", catalog)
    chosen = [p for p in catalog.packages[packages] if p.dist not in inst.cache.packages]
    for index, pkg in enumerate(chosen):
        inst.cache.add(pkg, extracted=index < len(chosen) - tarball_only)
    host.finish()
    return str(Path(fsroot) / "opt/conda/pkgs")


def scan(*paths):
    """The caches as the module loads them for a backup (top-level files only)."""
    return [PackageCache(p).scan_tarballs(Warnings()) for p in paths]


def tarballs(cache_path):
    return sorted(n for n in os.listdir(cache_path) if n.endswith(TARBALL))


def digest(path, algorithm="sha256"):
    return hashlib.new(algorithm, Path(path).read_bytes()).hexdigest()


def record_of(cache_path, fn):
    dist = fn[: -len(".conda")] if fn.endswith(".conda") else fn[: -len(".tar.bz2")]
    path = Path(cache_path, dist, "info", "repodata_record.json")
    return json.loads(path.read_text()) if path.exists() else None


def stored_objects(dest):
    """``{name: sha256 of content}`` of every file under the store."""
    root = Path(dest, "store", "sha256")
    return {p.name: digest(p) for p in root.glob("*/*")} if root.exists() else {}


def manifests(dest, host="h1"):
    return sorted(Path(dest, "manifests", host).glob("*.json"))


def run(dest, caches, host="h1", **kwargs):
    warnings = Warnings()
    result = run_backup(Store(str(dest), host), scan(*caches), warnings, **kwargs)
    return result, warnings


@pytest.fixture
def cache(tmp_path):
    return build_cache(tmp_path / "h1")


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / "backup"
    path.mkdir()
    return path


def flip_byte(path, offset=-1):
    """Corrupt a file in place, keeping its size and mtime."""
    st = os.stat(path)
    data = bytearray(Path(path).read_bytes())
    data[offset] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# -- backup ------------------------------------------------------------------------------------

def test_backup_stores_each_tarball_under_its_sha256_with_a_full_manifest(cache, dest):
    result, _w = run(dest, [cache])
    files = tarballs(cache)
    expected = {digest(os.path.join(cache, fn)) for fn in files}
    assert result.changed and len(result.copied) == len(files)
    assert stored_objects(dest) == {sha: sha for sha in expected}
    [manifest_path] = manifests(dest)
    assert result.manifest == str(manifest_path)
    entries = {e["fn"]: e for e in json.loads(manifest_path.read_text())["entries"]}
    assert sorted(entries) == files
    for fn, entry in entries.items():
        path = os.path.join(cache, fn)
        assert (entry["sha256"], entry["md5"], entry["size"]) == (digest(path), digest(path, "md5"), os.path.getsize(path))
        assert entry["source"] == path and entry["cache"] == cache
        assert entry["mtime_ns"] == os.stat(path).st_mtime_ns
        record = record_of(cache, fn)
        if record:
            assert entry["verified"] == "sha256"
            assert (entry["url"], entry["channel"], entry["subdir"]) == (record["url"], record["channel"], record["subdir"])
        else:  # tarball-only: nothing to check against, URL and channel from urls.txt
            assert entry["verified"] == "none"
            assert entry["url"].endswith("/" + fn) and entry["url"].rsplit("/", 2)[1] == entry["subdir"]
    assert sum(1 for e in entries.values() if e["verified"] == "none") == 2
    assert not os.listdir(dest / "tmp")


def bytes_read(func, *args, **kwargs):
    """``(result, bytes this process read by read(2) and the like during the call)``: every
    thread's reads count (``rchar`` of /proc/self/io)."""
    def rchar():
        with open("/proc/self/io") as handle:
            return int(next(line for line in handle if line.startswith("rchar:")).split()[1])
    before = rchar()
    result = func(*args, **kwargs)
    return result, rchar() - before


def test_a_tarball_only_scan_backs_up_what_a_full_scan_does(cache, tmp_path):
    results = []
    for name, how in (("full", PackageCache.scan), ("tarballs", PackageCache.scan_tarballs)):
        dest = tmp_path / name
        dest.mkdir()
        result = run_backup(Store(str(dest), "h1"), [how(PackageCache(cache), Warnings())], Warnings())
        entries = json.loads(Path(result.manifest).read_text())["entries"]
        results.append((stored_objects(dest), entries, sorted(i.path for i in result.copied)))
    assert results[0] == results[1] and len(results[0][1]) == len(tarballs(cache))


def test_second_run_is_unchanged_and_does_not_read_unchanged_tarballs(cache, dest):
    run(dest, [cache])
    (again, _w), read = bytes_read(run, dest, [cache])
    assert not again.changed and again.manifest is None and not again.copied
    assert len(again.plan.of("unchanged")) == len(tarballs(cache))
    assert len(manifests(dest)) == 1
    # Nothing but the manifest (and the listing) is read: not even the smallest tarball's worth
    # of bytes beyond it, let alone the records.
    smallest = min(os.path.getsize(os.path.join(cache, fn)) for fn in tarballs(cache))
    assert read < manifests(dest)[0].stat().st_size + smallest


def test_a_rewrite_that_keeps_size_and_mtime_is_read_again(cache, dest):
    run(dest, [cache])
    names = [fn for fn in tarballs(cache) if record_of(cache, fn)]
    # In place (same inode, mtime put back: only the ctime tells)...
    in_place = os.path.join(cache, names[0])
    flip_byte(in_place)
    # ...and replaced by a renamed file with the old mtime (a new inode).
    replaced = os.path.join(cache, names[1])
    st = os.stat(replaced)
    data = bytearray(Path(replaced).read_bytes())
    data[0] ^= 0xFF
    Path(replaced + ".new").write_bytes(bytes(data))
    os.utime(replaced + ".new", ns=(st.st_atime_ns, st.st_mtime_ns))
    os.rename(replaced + ".new", replaced)
    assert os.stat(replaced).st_mtime_ns == st.st_mtime_ns and os.stat(replaced).st_size == st.st_size
    again, _w = run(dest, [cache])
    failed = {i.path: i.reason for i in again.plan.of("failed")}
    assert sorted(failed) == sorted([in_place, replaced])
    assert all("does not match repodata_record.json" in reason for reason in failed.values())
    assert len(again.plan.of("unchanged")) == len(tarballs(cache)) - 2
    assert not {digest(in_place), digest(replaced)} & set(stored_objects(dest))


def test_a_tarball_that_does_not_match_its_record_is_reported_and_not_stored(cache, dest):
    names = [fn for fn in tarballs(cache) if record_of(cache, fn)]
    bad_sha, bad_size = os.path.join(cache, names[0]), os.path.join(cache, names[1])
    flip_byte(bad_sha, 100)
    with open(bad_size, "ab") as handle:
        handle.write(b"x")
    result, _w = run(dest, [cache])
    failed = {i.path: i.reason for i in result.plan.of("failed")}
    assert sorted(failed) == sorted([bad_sha, bad_size])
    assert "sha256" in failed[bad_sha] and "size" in failed[bad_size]
    stored = stored_objects(dest)
    assert digest(bad_sha) not in stored and digest(bad_size) not in stored
    entries = json.loads(manifests(dest)[0].read_text())["entries"]
    assert bad_sha not in [e["source"] for e in entries]
    assert len(entries) == len(tarballs(cache)) - 2


def test_an_unreadable_record_is_warned_about_and_its_tarball_stored_with_both_digests(cache, dest):
    fn = next(fn for fn in tarballs(cache) if record_of(cache, fn))
    record = Path(cache, fn[: -len(".conda")] if fn.endswith(".conda") else fn[: -len(".tar.bz2")],
                  "info", "repodata_record.json")
    record.write_text("{not json")
    result, warnings = run(dest, [cache])
    assert [w for w in warnings if str(record) in w and "not verified against it" in w]
    [item] = [i for i in result.plan.items if i.fn == fn]
    path = os.path.join(cache, fn)
    assert item.entry["verified"] == "none" and item.copied
    assert (item.entry["sha256"], item.entry["md5"]) == (digest(path), digest(path, "md5"))
    # Unchanged next time: neither the tarball nor its record is read, so no warning either.
    again, warnings = run(dest, [cache])
    assert not again.changed and not [w for w in warnings if str(record) in w]


def test_two_hosts_sharing_one_store_store_shared_packages_once(tmp_path, dest):
    first = build_cache(tmp_path / "h1", slice(0, 16))
    second = build_cache(tmp_path / "h2", slice(8, None))
    one, _w = run(dest, [first], host="h1")
    two, _w = run(dest, [second], host="h2")
    hashes_one = {digest(os.path.join(first, fn)) for fn in tarballs(first)}
    hashes_two = {digest(os.path.join(second, fn)) for fn in tarballs(second)}
    shared = hashes_one & hashes_two
    assert len(shared) >= 5, "the fixture must share packages between the hosts"
    assert set(stored_objects(dest)) == hashes_one | hashes_two
    assert {i.entry["sha256"] for i in one.copied} == hashes_one
    assert {i.entry["sha256"] for i in two.copied} == hashes_two - shared
    shared_items = [i for i in two.plan.items if i.entry and i.entry["sha256"] in shared]
    assert len(shared_items) == len(shared) and not any(i.copied for i in shared_items)
    assert len(manifests(dest, "h1")) == 1 and len(manifests(dest, "h2")) == 1


def test_check_mode_plans_the_same_copies_and_writes_nothing(cache, dest):
    planned, _w = run(dest, [cache], check_mode=True)
    assert os.listdir(dest) == []
    assert planned.changed and planned.manifest is None
    done, _w = run(dest, [cache])
    assert sorted(i.path for i in planned.copied) == sorted(i.path for i in done.copied)
    assert sum(i.size for i in planned.copied) == sum(os.path.getsize(os.path.join(cache, f)) for f in tarballs(cache))


# -- self-healing store ---------------------------------------------------------------------------

def truncate(path, keep=100):
    st = os.stat(path)
    with open(path, "r+b") as handle:
        handle.truncate(keep)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def object_of(cache, dest, fn):
    return Store(str(dest), "h1").object_path(digest(os.path.join(cache, fn)))


def touch(path):
    """Change only the ctime (same content, same mtime): the next run reads the tarball again."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_truncated_object_is_repaired_check_mode_predicts_it_and_the_manifest_records_it(cache, dest):
    run(dest, [cache])
    fn = tarballs(cache)[0]
    victim = object_of(cache, dest, fn)
    truncate(victim)
    before = stored_objects(dest)
    planned, _w = run(dest, [cache], check_mode=True)
    assert [i.fn for i in planned.repaired] == [fn] and not planned.copied and planned.changed
    assert "size 100, expected" in planned.repaired[0].damage
    assert stored_objects(dest) == before and len(manifests(dest)) == 1 and not os.listdir(dest / "tmp")
    done, _w = run(dest, [cache])
    assert [i.fn for i in done.repaired] == [fn] and not done.copied and done.changed
    assert digest(victim) == Path(victim).name and os.path.getsize(victim) == os.path.getsize(os.path.join(cache, fn))
    written = json.loads(Path(done.manifest).read_text())
    assert written["repaired"] == [{"sha256": Path(victim).name, "size": os.path.getsize(victim),
                                    "source": os.path.join(cache, fn), "damage": planned.repaired[0].damage}]
    assert len(written["entries"]) == len(tarballs(cache))
    assert verify(Store(str(dest), "h1"))[1:] == ([], [], [])
    again, _w = run(dest, [cache])
    assert not again.changed and not again.repaired and again.manifest is None


def test_a_flipped_object_is_repaired_when_its_tarball_is_read_and_unchanged_ones_with_rehash(cache, dest):
    run(dest, [cache])
    with_record = [fn for fn in tarballs(cache) if record_of(cache, fn)]
    without_record = [fn for fn in tarballs(cache) if not record_of(cache, fn)]
    read_again, no_record, unchanged = with_record[0], without_record[0], with_record[1]
    for fn in (read_again, no_record, unchanged):
        flip_byte(object_of(cache, dest, fn))
    # An unchanged tarball's object is only size-checked: a flipped byte goes unseen...
    quiet, _w = run(dest, [cache])
    assert not quiet.changed and not quiet.repaired
    # ...until the tarball is read again (its content is "already stored": that object is re-hashed).
    touch(os.path.join(cache, read_again))
    touch(os.path.join(cache, no_record))
    healed, _w = run(dest, [cache])
    assert sorted(i.fn for i in healed.repaired) == sorted([read_again, no_record]) and healed.changed
    assert all(i.damage.startswith("corrupt: ") for i in healed.repaired)
    assert [c["sha256"] for c in verify(Store(str(dest), "h1"))[2]] == [Path(object_of(cache, dest, unchanged)).name]
    planned, _w = run(dest, [cache], check_mode=True, rehash=True)
    assert [i.fn for i in planned.repaired] == [unchanged]
    rehashed, _w = run(dest, [cache], rehash=True)
    assert [i.fn for i in rehashed.repaired] == [unchanged]
    assert [r["source"] for r in json.loads(Path(rehashed.manifest).read_text())["repaired"]] == [os.path.join(cache, unchanged)]
    assert verify(Store(str(dest), "h1"))[1:] == ([], [], [])
    assert all(name == sha for name, sha in stored_objects(dest).items())
    assert not run(dest, [cache], rehash=True)[0].changed


def test_prune_repairs_a_damaged_object_before_its_tarball_leaves_the_cache(cache, dest):
    run(dest, [cache])
    files = tarballs(cache)
    original = {fn: digest(os.path.join(cache, fn)) for fn in files}
    flip_byte(object_of(cache, dest, files[0]))
    truncate(object_of(cache, dest, files[1]))
    planned, _w = run(dest, [cache], prune_source=True, check_mode=True)
    assert sorted(i.fn for i in planned.repaired) == sorted(files[:2]) and planned.prune_failures == []
    assert sorted(os.path.basename(p) for p in planned.pruned) == files and tarballs(cache) == files
    result, _w = run(dest, [cache], prune_source=True)
    assert sorted(i.fn for i in result.repaired) == sorted(files[:2])
    assert sorted(os.path.basename(p) for p in result.pruned) == files and tarballs(cache) == []
    assert set(stored_objects(dest)) == set(original.values())
    assert all(name == sha for name, sha in stored_objects(dest).items())


# -- verify ------------------------------------------------------------------------------------

def test_verify_finds_corrupt_and_missing_objects(cache, dest):
    run(dest, [cache])
    store = Store(str(dest), "h1")
    checked, missing, corrupt, bad = verify(store)
    assert (checked, missing, corrupt, bad) == (len(tarballs(cache)), [], [], [])
    objects = sorted(stored_objects(dest))
    flip_byte(store.object_path(objects[0]))
    os.unlink(store.object_path(objects[1]))
    checked, missing, corrupt, bad = verify(store)
    assert [c["sha256"] for c in corrupt] == [objects[0]]
    assert [m["sha256"] for m in missing] == [objects[1]]
    only_manifest = verify(store, store.latest())
    assert [c["sha256"] for c in only_manifest[2]] == [objects[0]]


def test_a_manifest_that_does_not_parse_is_a_clear_error(cache, dest):
    run(dest, [cache])
    broken = dest / "manifests" / "h1" / "29990101T000000.000000Z.json"
    broken.write_text('{"format": 1, "entries": [')
    with pytest.raises(BackupError, match="does not parse"):
        Store(str(dest), "h1").latest()
    broken.write_text('{"format": 1, "host": "h1", "created": "x", "entries": [{"fn": "a.conda"}]}')
    with pytest.raises(BackupError, match="not a backup manifest"):
        Store(str(dest), "h1").resolve(str(broken))


# -- restore -----------------------------------------------------------------------------------

def test_restore_into_an_emptied_cache_matches_the_repodata_records(cache, dest):
    files = tarballs(cache)
    original = {fn: digest(os.path.join(cache, fn)) for fn in files}
    run(dest, [cache])
    for fn in files:
        os.unlink(os.path.join(cache, fn))
    Path(cache, "urls.txt").write_text("")
    store = Store(str(dest), "h1")
    items, urls, mismatch = run_restore(store, store.latest(), cache, Warnings())
    assert sorted(i.entry["fn"] for i in items if i.action == "restore") == files
    assert tarballs(cache) == files and mismatch == []
    for fn in files:
        path = os.path.join(cache, fn)
        assert digest(path) == original[fn]
        record = record_of(cache, fn)
        if record:
            assert (digest(path), digest(path, "md5"), os.path.getsize(path)) == (record["sha256"], record["md5"], record["size"])
    listed = Path(cache, "urls.txt").read_text().split()
    assert sorted(urls) == sorted(listed) and sorted(u.rsplit("/", 1)[1] for u in listed) == files
    assert not [n for n in os.listdir(cache) if n.endswith(RESTORE_TMP_SUFFIX)]
    again = run_restore(store, store.latest(), cache, Warnings())
    assert {i.action for i in again[0]} == {"present"} and again[1] == []


def test_restore_as_the_caches_owner_in_batches_from_a_store_only_root_reads(cache, dest, monkeypatch):
    """A user's cache is written with the user's credentials (every file theirs, a read-only cache
    refused by the kernel), the store's objects handed over open, a few at a time."""
    files = tarballs(cache)
    run(dest, [cache])
    os.chmod(str(dest), 0o700)
    for fn in files:
        os.unlink(os.path.join(cache, fn))
    os.unlink(os.path.join(cache, "urls.txt"))
    for base, dirs, names in os.walk(cache):
        for name in dirs + names + ["."]:
            os.lchown(os.path.join(base, name), 4242, 4242)
    monkeypatch.setattr(conda_backup_restore, "BATCH", 2)
    user = Identity(4242, 4242, [4242])
    store = Store(str(dest), "h1")
    os.chmod(cache, 0o500)
    with pytest.raises(BackupError, match="Permission denied"):
        run_restore(store, store.latest(), cache, Warnings(), identity=user)
    os.chmod(cache, 0o755)
    items, urls, mismatch = run_restore(store, store.latest(), cache, Warnings(), identity=user)
    assert sorted(i.entry["fn"] for i in items if i.action == "restore") == files and len(files) > 4
    assert tarballs(cache) == files and mismatch == []
    assert {os.stat(os.path.join(cache, fn)).st_uid for fn in files + ["urls.txt"]} == {4242}
    assert sorted(Path(cache, "urls.txt").read_text().split()) == sorted(urls) and len(urls) == len(files)


def test_restore_refuses_a_corrupt_store_object_and_keeps_the_cache_clean(cache, dest):
    run(dest, [cache])
    victim = tarballs(cache)[0]
    os.unlink(os.path.join(cache, victim))
    store = Store(str(dest), "h1")
    entry = [e for e in store.latest().entries if e["fn"] == victim][0]
    flip_byte(store.object_path(entry["sha256"]))
    items, _urls, _m = run_restore(store, store.latest(), cache, Warnings())
    [failed] = [i for i in items if i.action == "failed"]
    assert failed.entry["fn"] == victim and "corrupt" in failed.reason
    assert victim not in os.listdir(cache)


# -- prune -------------------------------------------------------------------------------------

def test_prune_removes_backed_up_tarballs_only_and_restore_brings_them_back(cache, dest):
    files = tarballs(cache)
    extracted = sorted(n for n in os.listdir(cache) if os.path.isdir(os.path.join(cache, n, "info")))
    result, _w = run(dest, [cache], prune_source=True)
    assert sorted(os.path.basename(p) for p in result.pruned) == files
    assert tarballs(cache) == []
    assert sorted(n for n in os.listdir(cache) if os.path.isdir(os.path.join(cache, n, "info"))) == extracted
    again, _w = run(dest, [cache], prune_source=True)
    assert not again.changed and again.pruned == [] and len(again.plan.carried) == len(files)
    store = Store(str(dest), "h1")
    assert all(e["pruned"] for e in store.latest().entries)
    items, _urls, mismatch = run_restore(store, store.latest(), cache, Warnings())
    assert tarballs(cache) == files and mismatch == []


# -- channel -----------------------------------------------------------------------------------

def test_channel_serves_the_backup_to_a_solver_and_installer(cache, dest, tmp_path):
    rattler = pytest.importorskip("rattler")
    result, _w = run(dest, [cache], channel=True)
    channel = Path(result.channel)
    with_record = [fn for fn in tarballs(cache) if record_of(cache, fn)]
    listed = []
    for subdir in ("linux-64", "noarch"):
        data = json.loads((channel / subdir / "repodata.json").read_text())
        for key in ("packages", "packages.conda"):
            for fn, fields in data[key].items():
                listed.append(fn)
                assert fields["sha256"] == record_of(cache, fn)["sha256"] == digest(channel / subdir / fn)
                assert os.stat(channel / subdir / fn).st_ino == os.stat(Store(str(dest), "h1").object_path(fields["sha256"])).st_ino
    assert sorted(listed) == with_record
    names = sorted({fn.rsplit("-", 2)[0] for fn in with_record} - {"conda"})

    async def solve_and_install():
        records = await rattler.solve(sources=[channel.as_uri()], specs=names, platforms=["linux-64", "noarch"])
        await rattler.install(records, target_prefix=str(tmp_path / "env"), cache_dir=str(tmp_path / "pkgs"))
        return records

    records = asyncio.run(solve_and_install())
    assert {r.name.normalized for r in records} >= set(names)
    assert (tmp_path / "env" / "conda-meta").is_dir()
    assert not run(dest, [cache], channel=True)[0].changed


# -- bad dest, full disk, killed run -------------------------------------------------------------

def test_dest_inside_a_cache_or_environment_missing_or_read_only_is_refused(cache, tmp_path):
    store = Store(os.path.join(cache, "backup"), "h1")
    with pytest.raises(BackupError, match="inside the package cache"):
        store.check(True, [("package cache", cache)])
    env = str(tmp_path / "h1/opt/conda")
    with pytest.raises(BackupError, match="inside the environment"):
        Store(env + "/backups", "h1").check(True, [("environment", env)])
    with pytest.raises(BackupError, match="does not exist"):
        Store(str(tmp_path / "nowhere"), "h1").check(True)
    with pytest.raises(BackupError, match="plain name"):
        Store(str(tmp_path), "../evil")


@pytest.fixture
def small_fs(tmp_path):
    """A tmpfs of its own (root only), so the disk really fills up; always unmounted."""
    with tmpfs(tmp_path / "smallfs", "size=96k,nr_inodes=200") as mount:
        yield mount


@contextlib.contextmanager
def tmpfs(mount, options):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_where_the_kernel_cannot_copy_the_hashed_buffer_is_written(cache, tmp_path):
    with tmpfs(tmp_path / "other", "size=64m") as dest:
        # A real refusal, not a simulated one: this kernel will not copy_file_range from the
        # cache's filesystem to a tmpfs (EXDEV across filesystem types since Linux 5.19).
        first = os.path.join(cache, tarballs(cache)[0])
        src, probe = os.open(first, os.O_RDONLY), os.open(str(dest / "probe"), os.O_WRONLY | os.O_CREAT)
        try:
            os.copy_file_range(src, probe, 1, 0, 0)
            pytest.skip("this kernel copies across these filesystems; the fallback is not reached")
        except OSError as exc:
            assert exc.errno in NO_KERNEL_COPY
        finally:
            os.close(src)
            os.close(probe)
            os.unlink(str(dest / "probe"))
        result, _w = run(dest, [cache])
        assert len(result.copied) == len(tarballs(cache)) and not result.plan.of("failed")
        assert set(stored_objects(dest)) == {digest(os.path.join(cache, fn)) for fn in tarballs(cache)}
        assert all(name == sha for name, sha in stored_objects(dest).items())
        assert verify(Store(str(dest), "h1"))[1:] == ([], [], [])


def test_read_only_dest_is_refused(small_fs):
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    with pytest.raises(BackupError, match="^dest %s is not usable: %s is on a read-only filesystem$" % (small_fs, small_fs)):
        Store(str(small_fs), "h1").check(True)
    Store(str(small_fs), "h1").check(False)  # restoring from it reads only


def test_a_file_on_the_dest_path_and_a_pseudo_filesystem_are_named(tmp_path):
    """Issue 14, finding 9: not ``[Errno 17] File exists`` or a count of free bytes."""
    (tmp_path / "hostname").write_text("h1\n")
    where = str(tmp_path / "hostname")
    for dest in (where, where + "/backup"):
        for writing in (True, False):
            with pytest.raises(BackupError) as raised:
                Store(dest, "h1").check(writing)
            assert str(raised.value) == "dest %s is not usable: %s exists and is not a directory" % (dest, where)
    if mount_of("/sys") == ("/sys", "sysfs"):
        with pytest.raises(BackupError, match=r"^dest /sys is not usable: /sys is a pseudo-filesystem \(sysfs\)$"):
            Store("/sys", "h1").check(True)
    with pytest.raises(BackupError, match="does not exist"):
        Store(str(tmp_path / "not-mounted"), "h1").check(True)


def test_disk_full_fails_cleanly_and_leaves_the_existing_store_untouched(tmp_path, small_fs):
    small = build_cache(tmp_path / "first", slice(0, 4), tarball_only=0)
    run(small_fs, [small])
    before = {p: (p.stat().st_mtime_ns, digest(p)) for p in small_fs.rglob("*") if p.is_file()}
    big = build_cache(tmp_path / "big", tarball_only=0, seed=9)
    with pytest.raises(BackupError, match="no space left"):
        run(small_fs, [big], workers=1)
    assert os.listdir(small_fs / "tmp") == []
    assert {p: (p.stat().st_mtime_ns, digest(p)) for p in before} == before
    assert all(name == sha for name, sha in stored_objects(small_fs).items())
    assert len(manifests(small_fs)) == 1


def test_sigkill_mid_backup_leaves_no_partial_object_and_a_rerun_completes(tmp_path, dest):
    cache = Path(build_cache(tmp_path / "h1"))
    for index in range(4):  # big tarball-only files (no record) so the copy takes a while
        (cache / ("big%d-1.0-0.conda" % index)).write_bytes(os.urandom(48 << 20))
    script = ("import sys; from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_backup as b, conda_backup_store as s;"
              "from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_cache import PackageCache;"
              "from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import Warnings;"
              "b.run_backup(s.Store(sys.argv[1], 'h1'), [PackageCache(sys.argv[2]).scan_tarballs(Warnings())], Warnings(), workers=1)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / ".build" / "link"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", script, str(dest), str(cache)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        temps = list((dest / "tmp").glob("h1.*")) if (dest / "tmp").exists() else []
        if any(t.stat().st_size > (4 << 20) for t in temps if t.exists()):
            break
        time.sleep(0.01)
    else:
        proc.kill()
        pytest.fail("the backup never got to copying a big file")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list((dest / "tmp").iterdir()), "the kill must land mid-copy"
    assert all(name == sha for name, sha in stored_objects(dest).items())
    assert manifests(dest) == []
    result, _w = run(dest, [str(cache)])
    assert os.listdir(dest / "tmp") == []
    assert set(stored_objects(dest)) == {digest(cache / fn) for fn in tarballs(cache)}
    assert len(manifests(dest)) == 1 and not run(dest, [str(cache)])[0].changed
