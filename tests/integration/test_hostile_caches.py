"""A user on a shared host against the modules that came with shared, rattler and mamba caches.

Each test is an attack alice (a login user, member of the ``conda`` group) mounts with what she
controls: files in her home and caches, entries she may create in a group-shared cache.  The module
runs as root over SSH (become) and must neither give her root's rights nor stop for everyone: no
root-owned setuid file made of hers, no run hanging on a FIFO where a lock file should be, no
run failing for every user because of her symlink.  Decoys are compared by checksum.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time

import pytest

from decoys import checksums, give, write
from test_conda_pkgs_dirs import call
from testfleet.fleet import running

ALICE, BOB = (1001, 1001), (1002, 1002)
SHARED = "/srv/conda/pkgs"
# A run that opens a FIFO for reading waits for a writer forever; this long is "forever" here.
HANG = 60


@pytest.fixture(scope="module")
def host(fleet_state_factory):
    with running(fleet_state_factory("hostilecaches"), 1, ("single_root",)) as fleet:
        name = fleet.hosts[0]
        root = fleet.root_of(name)
        with open(str(root / "etc/group"), "a") as handle:
            handle.write("conda:x:1500:alice,bob\n")
        with open(str(root / "etc/gshadow"), "a") as handle:
            handle.write("conda:!::alice,bob\n")
        os.makedirs(str(root / "srv/conda"), exist_ok=True)
        yield fleet, name, root


def alices_fifo(path):
    """A FIFO of alice's at ``path`` (whatever was there before goes)."""
    if os.path.lexists(str(path)):
        os.unlink(str(path))
    os.mkfifo(str(path))
    os.lchown(str(path), *ALICE)
    return path


def finishing(fifos, work):
    """``(work(), seconds)``; a run blocked opening one of ``fifos`` is released (a writer opens
    it) after :data:`HANG` seconds, so a hang shows as a slow run instead of a stuck test."""
    box = {}
    worker = threading.Thread(target=lambda: box.update(result=work()))
    started = time.time()
    worker.start()
    worker.join(HANG)
    while worker.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(str(fifo), os.O_WRONLY | os.O_NONBLOCK))
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # no reader (yet)
                    raise
        worker.join(1)
    return box.get("result"), time.time() - started


def test_a_setuid_file_alice_left_in_a_shared_cache_never_becomes_a_root_setuid_file(host, tmp_path):
    fleet, name, root = host
    made = call(fleet, name, dict(path=SHARED, group="conda", state="fixed"), tmp_path,
                module="pkgcache.fleet.conda_shared_cache")
    assert not made["failed"], made.get("msg")
    shared = root / SHARED.lstrip("/")
    # While the cache was writable, alice (a member) left a program of hers, setuid to herself.
    program = write(shared / "tool", b"#!/bin/sh\nid\n", ALICE)
    os.chmod(str(program), 0o4755)
    sgid = write(shared / "sgid", b"x", ALICE)
    os.chmod(str(sgid), 0o2755)
    decoy = checksums(root / "etc")
    # The operator makes the cache read-only: every entry is to be the declared owner's (root).
    fixed = call(fleet, name, dict(path=SHARED, group="conda", state="fixed", access="read_only"), tmp_path,
                 module="pkgcache.fleet.conda_shared_cache")
    assert not fixed["failed"], fixed.get("msg")
    for path in (program, sgid):
        st = os.lstat(str(path))
        assert not (st.st_uid == 0 and st.st_mode & (stat.S_ISUID | stat.S_ISGID)), (path, oct(st.st_mode), fixed)
        assert not st.st_mode & stat.S_IWGRP
    drift = dict((d["path"], d) for d in fixed["drift"])
    assert drift[SHARED + "/tool"]["fixable"] is False and "setuid" in drift[SHARED + "/tool"]["why"]
    assert checksums(root / "etc") == decoy
    # In a writable cache the group never gets write on a set-id file either.
    writable = call(fleet, name, dict(path=SHARED, group="conda", state="fixed"), tmp_path,
                    module="pkgcache.fleet.conda_shared_cache")
    assert not writable["failed"], writable.get("msg")
    assert not os.lstat(str(program)).st_mode & stat.S_IWGRP and not os.lstat(str(sgid)).st_mode & stat.S_IWGRP


def test_a_fifo_as_alices_mamba_cache_lock_does_not_hang_the_root_clean(host, tmp_path):
    fleet, name, root = host
    pkgs = root / "home/alice/.conda/pkgs"
    stale = write(pkgs / "stale-1.0-0.tar.bz2", b"s" * 64, ALICE)
    give(pkgs, ALICE, root / "home/alice")
    fifo = alices_fifo(pkgs / "pkgs.lock")
    item_fifo = alices_fifo(pkgs / "stale-1.0-0.tar.bz2.lock")  # mamba's per-item lock
    try:
        result, seconds = finishing((fifo, item_fifo), lambda: call(
            fleet, name, {"users": ["alice"]}, tmp_path, module="pkgcache.fleet.conda_clean"))
        assert seconds < HANG, "the root run waited on alice's FIFO for %ds" % seconds
        assert not result["failed"], result.get("msg")
        assert stale.exists(), "a cache whose lock cannot be told free is kept"
    finally:
        for path in (fifo, item_fifo):
            path.unlink()


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_alices_rattler_cache_lock_neither_hangs_nor_fails_the_root_clean_for_bob(host, tmp_path, kind):
    fleet, name, root = host
    caches = {}
    for user, owner in (("alice", ALICE), ("bob", BOB)):
        pkgs = root / ("home/%s/.cache/rattler/cache/pkgs" % user)
        write(pkgs / "old-1.0-0" / "info/index.json", b"{}", owner)
        write(pkgs / "old-1.0-0.lock", b"\0" * 8, owner)
        write(pkgs / ".cache.lock", b"", owner)
        give(pkgs / "old-1.0-0" / "info", owner, root / ("home/%s" % user))
        caches[user] = pkgs
    lock = caches["alice"] / ".cache.lock"
    lock.unlink()
    if kind == "fifo":
        os.mkfifo(str(lock))
    else:
        write(root / "srv/decoy/lockfile", b"root's\n")
        os.symlink("/srv/decoy/lockfile", str(lock))
    os.lchown(str(lock), *ALICE)
    decoy = checksums(root / "srv/decoy")
    try:
        result, seconds = finishing((lock,) if kind == "fifo" else (), lambda: call(
            fleet, name, {"users": ["alice", "bob"]}, tmp_path, module="pkgcache.fleet.rattler_cache_clean"))
        assert seconds < HANG, "the root run waited on alice's FIFO for %ds" % seconds
        assert not result["failed"], result.get("msg")
        assert not (caches["bob"] / "old-1.0-0").exists(), "bob's cache is still cleaned"
        assert (caches["alice"] / "old-1.0-0").exists()
        skipped = json.dumps([c for c in result["caches"] if c["path"].startswith("/home/alice/")])
        assert ".cache.lock" in skipped, result["caches"]
        assert checksums(root / "srv/decoy") == decoy
    finally:
        lock.unlink()


@pytest.mark.parametrize("kind", ["symlink", "fifo"])
def test_alices_mamba_trash_index_neither_leaks_roots_file_nor_hangs_the_root_clean(host, tmp_path, kind):
    fleet, name, root = host
    prefix = root / "home/alice/envs/x"
    write(prefix / "conda-meta/history", b"", ALICE)
    trashed = write(prefix / "lib/old.so.mamba_trash", b"t", ALICE)
    give(trashed.parent, ALICE, root / "home/alice")
    give(prefix / "conda-meta", ALICE, root / "home/alice")
    listing = write(root / "home/alice/.conda/environments.txt", b"/home/alice/envs/x\n", ALICE)
    give(listing.parent, ALICE, root / "home/alice")
    secret = write(root / "srv/decoy/shadow", b"SECRET-OF-ROOT\n")
    os.chmod(str(secret), 0o600)
    index = prefix / "conda-meta/mamba_trash.txt"
    if kind == "fifo":
        os.mkfifo(str(index))
    else:
        os.symlink("/srv/decoy/shadow", str(index))
    os.lchown(str(index), *ALICE)
    decoy = checksums(root / "srv/decoy")
    try:
        result, seconds = finishing((index,) if kind == "fifo" else (), lambda: call(
            fleet, name, {"targets": ["trash"]}, tmp_path, module="pkgcache.fleet.conda_clean"))
        assert seconds < HANG, "the root run waited on alice's FIFO for %ds" % seconds
        assert not result["failed"], result.get("msg")
        assert "SECRET-OF-ROOT" not in json.dumps(result), "root read a root-only file for alice"
        assert "/home/alice/envs/x/lib/old.so.mamba_trash" in result["tempfiles"], "her own trash still goes"
        assert checksums(root / "srv/decoy") == decoy
    finally:
        if os.path.lexists(str(index)):
            index.unlink()


@pytest.mark.parametrize("config, module, args", [
    (".conda/environments.txt", "pkgcache.fleet.conda_clean", {}),
    (".condarc", "pkgcache.fleet.conda_clean", {}),
    (".config/pixi/config.toml", "pkgcache.fleet.rattler_cache_clean", {}),
    (".config/pip/pip.conf", "pkgcache.fleet.pip_cache_clean", {"purge": True}),
])
def test_a_fifo_as_alices_config_does_not_hang_the_root_run(host, tmp_path, config, module, args):
    fleet, name, root = host
    fifo = root / "home/alice" / config
    os.makedirs(str(fifo.parent), exist_ok=True)
    give(fifo.parent, ALICE, root / "home/alice")
    alices_fifo(fifo)
    try:
        result, seconds = finishing((fifo,), lambda: call(fleet, name, dict(users=["alice"], **args), tmp_path, module=module))
        assert seconds < HANG, "the root run waited on alice's FIFO for %ds" % seconds
        assert not result["failed"] or "not a regular file" in result.get("msg", ""), result.get("msg")
    finally:
        fifo.unlink()
