"""Realistic pip and uv caches on disk, deterministic per seed.

The layouts are the ones the tools write (pip's ``network/cache.py``, ``cache.py``,
``self_outdated_check.py``; uv's ``uv-cache`` buckets), so the facts and cleanup modules are
tested against the real shape: hashed directory fan-out, metadata next to bodies, real zip
wheels, uv's wheel entries as symlinks into ``archive-v0``.  Each builder returns a manifest of
what it wrote, counted while writing, so tests compare module output with an independent
number.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import stat
import string
import struct
import time
import zipfile
from pathlib import Path

INDEX = "https://index.example.invalid"
DAY = 86400
# Real pip sections in the order pip's `cache info` lists them.
PIP_SECTIONS = ("http-v2", "http", "wheels", "selfcheck")
UV_BUCKETS = ("archive-v0", "wheels-v6", "sdists-v9", "simple-v24", "interpreter-v4")
CACHEDIR_TAG = b"Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by uv.\n"
_WORDS = ("alpha", "beta", "gamma", "delta", "kappa", "sigma", "omega", "lumen", "parse", "tools", "utils", "core")
# Fixed zip member times keep wheel bytes identical across runs.
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)


def msgpack(obj) -> bytes:
    """The subset of MessagePack that cachecontrol and uv metadata use (maps, str, bin, ints)."""
    if obj is None:
        return b"\xc0"
    if isinstance(obj, bool):
        return b"\xc3" if obj else b"\xc2"
    if isinstance(obj, int):
        if 0 <= obj < 128:
            return bytes([obj])
        return b"\xd3" + struct.pack(">q", obj)
    if isinstance(obj, str):
        data = obj.encode()
        head = bytes([0xA0 | len(data)]) if len(data) < 32 else b"\xda" + struct.pack(">H", len(data))
        return head + data
    if isinstance(obj, bytes):
        return b"\xc6" + struct.pack(">I", len(obj)) + obj
    if isinstance(obj, dict):
        head = bytes([0x80 | len(obj)]) if len(obj) < 16 else b"\xde" + struct.pack(">H", len(obj))
        return head + b"".join(msgpack(k) + msgpack(v) for k, v in obj.items())
    raise TypeError(f"no msgpack encoding for {type(obj).__name__}")


class _Writer:
    """Writes files with chosen mtimes and counts what it wrote, per section."""

    def __init__(self, root: Path, sections):
        self.root = root
        self.sections = {name: {"items": 0, "files": 0, "symlinks": 0, "apparent_bytes": 0,
                                "oldest_mtime": None, "newest_mtime": None} for name in sections}

    def file(self, section: str, rel: str, data: bytes, mtime: int | None = None, item: bool = False) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        counts = self.sections[section]
        counts["files"] += 1
        counts["apparent_bytes"] += len(data)
        if item:
            counts["items"] += 1
            counts["oldest_mtime"] = mtime if counts["oldest_mtime"] is None else min(counts["oldest_mtime"], mtime)
            counts["newest_mtime"] = mtime if counts["newest_mtime"] is None else max(counts["newest_mtime"], mtime)
        return path

    def symlink(self, section: str, rel: str, target: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.symlink_to(target)
        self.sections[section]["symlinks"] += 1
        self.sections[section]["apparent_bytes"] += len(os.fsencode(target))

    def manifest(self, **extra) -> dict:
        totals = {key: sum(s[key] for s in self.sections.values()) for key in ("items", "files", "symlinks", "apparent_bytes")}
        return {"path": str(self.root), "sections": self.sections, **totals, **extra}


def _names(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``count`` distinct (distribution, version) pairs."""
    return [("-".join(rng.sample(_WORDS, 2)) + str(i), f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}")
            for i in range(count)]


def _mtime(rng: random.Random, now: int, span_days: int) -> int:
    return now - rng.randint(0, span_days * DAY)


def wheel_bytes(rng: random.Random, dist: str, version: str, payload: int) -> bytes:
    """A small but valid wheel (zip with a module, METADATA, WHEEL and a hashed RECORD)."""
    module = dist.replace("-", "_")
    info = f"{module}-{version}.dist-info"
    members = {
        f"{module}/__init__.py": b"# generated\nDATA = %r\n" % rng.randbytes(payload).hex().encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: condafab\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for name, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    members[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, _ZIP_TIME), data)
    return buf.getvalue()


def _http_key_path(url: str) -> str:
    """pip's SafeFileCache path for a cache key: five one-char levels, then the sha224."""
    hashed = hashlib.sha224(url.encode()).hexdigest()
    return "/".join(list(hashed[:5]) + [hashed])


def _cached_response(url: str, body: bytes | None) -> bytes:
    """cachecontrol's serializer v4 record: ``cc=4,`` then msgpack; the body inline when given."""
    response = {
        "body": body,
        "headers": {"Content-Type": "application/octet-stream", "Content-Length": str(len(body or b"")),
                    "Cache-Control": "max-age=365000000, immutable, public", "X-Url": url},
        "status": 200, "version": 11, "reason": "OK", "decode_content": False,
    }
    return b"cc=4," + msgpack({"response": response, "vary": {}})


def build_pip_cache(cache_dir: Path, seed: int, http_entries: int = 12, legacy_http_entries: int = 4,
                    wheels: int = 3, selfchecks: int = 1, now: int | None = None, span_days: int = 180,
                    max_body: int = 48 * 1024) -> dict:
    """Write a pip cache under ``cache_dir``; return the manifest of what was written.

    ``http-v2`` (pip >= 23.3) holds metadata + ``.body`` per response; legacy ``http`` one file
    with the body inline; ``wheels`` one locally built wheel and its ``origin.json`` per key
    directory; ``selfcheck`` one state file per interpreter prefix.  Entry mtimes are spread over
    ``span_days`` before ``now``; everything but ``now`` is fixed by ``seed``.
    """
    rng = random.Random(seed)
    now = int(time.time()) if now is None else int(now)
    out = _Writer(Path(cache_dir), PIP_SECTIONS)
    out.root.mkdir(parents=True, exist_ok=True)
    dists = _names(rng, max(http_entries, legacy_http_entries, wheels, 1))
    for i in range(http_entries):
        dist, version = dists[i]
        url = f"{INDEX}/packages/{dist}-{version}-py3-none-any.whl"
        rel = "http-v2/" + _http_key_path(url)
        mtime = _mtime(rng, now, span_days)
        out.file("http-v2", rel, _cached_response(url, None), mtime, item=True)
        out.file("http-v2", rel + ".body", rng.randbytes(rng.randint(1, max_body)), mtime)
    for i in range(legacy_http_entries):
        dist, _version = dists[i]
        url = f"{INDEX}/simple/{dist}/"
        body = f"<html><body><a href='../../packages/{dist}'>{dist}</a></body></html>".encode()
        out.file("http", "http/" + _http_key_path(url), _cached_response(url, body), _mtime(rng, now, span_days), item=True)
    for i in range(wheels):
        dist, version = dists[i]
        url = f"{INDEX}/packages/{dist}-{version}.tar.gz"
        key = json.dumps({"interpreter_name": "cp", "interpreter_version": "311", "url": url},
                         sort_keys=True, separators=(",", ":"))
        hashed = hashlib.sha224(key.encode()).hexdigest()
        rel = f"wheels/{hashed[:2]}/{hashed[2:4]}/{hashed[4:6]}/{hashed[6:]}"
        mtime = _mtime(rng, now, span_days)
        whl = wheel_bytes(rng, dist, version, rng.randint(64, max_body // 4))
        out.file("wheels", f"{rel}/{dist.replace('-', '_')}-{version}-py3-none-any.whl", whl, mtime, item=True)
        origin = json.dumps({"url": url, "archive_info": {"hashes": {"sha256": hashlib.sha256(whl).hexdigest()}}})
        out.file("wheels", f"{rel}/origin.json", origin.encode(), mtime)
    for i in range(selfchecks):
        prefix = f"/opt/python/env{i}"
        state = {"key": prefix, "last_check": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "pypi_version": "24.0"}
        name = hashlib.sha224(prefix.encode()).hexdigest()
        out.file("selfcheck", f"selfcheck/{name}.json", json.dumps(state).encode(), _mtime(rng, now, span_days), item=True)
    return out.manifest(tool="pip")


def _archive_id(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits + "-_", k=21))


def build_uv_cache(cache_dir: Path, seed: int, wheels: int = 3, sdists: int = 1, simple: int = 4,
                   now: int | None = None, span_days: int = 120, hardlink_into: Path | None = None,
                   max_file: int = 32 * 1024) -> dict:
    """Write a uv cache under ``cache_dir``; return the manifest of what was written.

    Root markers (``CACHEDIR.TAG``, ``.gitignore``, ``.lock``); unpacked wheels in
    ``archive-v0/<id>/`` with ``wheels-v6/pypi/<name>/<stem>`` symlinks to them and a ``.http``
    policy file; built sdists in ``sdists-v9``; index pages in ``simple-v24``; interpreter info.
    With ``hardlink_into``, every archive file is also hard-linked there, as ``uv pip install``
    does into a venv: those bytes are on disk but not reclaimable by clearing the cache.
    """
    rng = random.Random(seed)
    now = int(time.time()) if now is None else int(now)
    root = Path(cache_dir)
    out = _Writer(root, ("root",) + UV_BUCKETS)
    root.mkdir(parents=True, exist_ok=True)
    # uv has no item notion inside a bucket: every file counts; markers date from the cache's creation.
    created = now - span_days * DAY
    out.file("root", "CACHEDIR.TAG", CACHEDIR_TAG, created, item=True)
    out.file("root", ".gitignore", b"*", created, item=True)
    out.file("root", ".lock", b"", created, item=True)
    out.file("sdists-v9", "sdists-v9/.gitignore", b"", created, item=True)
    out.file("sdists-v9", "sdists-v9/.git", b"", created, item=True)
    linked = 0
    for dist, version in _names(rng, wheels):
        module = dist.replace("-", "_")
        stem = f"{module}-{version}-py3-none-any"
        archive = f"archive-v0/{_archive_id(rng)}"
        mtime = _mtime(rng, now, span_days)
        for rel, data in ((f"{module}/__init__.py", rng.randbytes(rng.randint(1, max_file))),
                          (f"{module}-{version}.dist-info/METADATA", f"Name: {dist}\nVersion: {version}\n".encode())):
            written = out.file("archive-v0", f"{archive}/{rel}", data, mtime, item=True)
            if hardlink_into is not None:
                target = Path(hardlink_into) / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(written, target)
                linked += 1
        out.file("wheels-v6", f"wheels-v6/pypi/{dist}/{stem}.http", msgpack({"filename": stem + ".whl", "id": archive[11:]}), mtime, item=True)
        # Relative, so the link stays right wherever the tree is mounted (a host's root, a copy).
        out.symlink("wheels-v6", f"wheels-v6/pypi/{dist}/{stem}", f"../../../{archive}")
    for dist, version in _names(random.Random(seed + 1), sdists):
        base = f"sdists-v9/pypi/{dist}/{version}"
        mtime = _mtime(rng, now, span_days)
        revision = _archive_id(rng)
        out.file("sdists-v9", f"{base}/revision.http", msgpack({"id": revision}), mtime, item=True)
        out.file("sdists-v9", f"{base}/{revision}/metadata.msgpack", msgpack({"name": dist, "version": version}), mtime, item=True)
        whl = wheel_bytes(rng, dist, version, rng.randint(64, max_file // 4))
        out.file("sdists-v9", f"{base}/{revision}/{dist.replace('-', '_')}-{version}-py3-none-any.whl", whl, mtime, item=True)
    for dist, _version in _names(random.Random(seed + 2), simple):
        out.file("simple-v24", f"simple-v24/pypi/{dist}.rkyv", rng.randbytes(rng.randint(64, 4096)), _mtime(rng, now, span_days), item=True)
    interpreter = hashlib.sha256(str(seed).encode()).hexdigest()[:16]
    out.file("interpreter-v4", f"interpreter-v4/{interpreter}.msgpack", msgpack({"sys_prefix": "/usr"}), _mtime(rng, now, span_days), item=True)
    return out.manifest(tool="uv", hardlinked=linked)


def snapshot(root: Path) -> dict:
    """Every entry below ``root``: bytes (or link target) and lstat metadata except the access
    time, which reading may move.  Two equal snapshots mean nothing was written, renamed,
    chmod-ed or touched in between."""
    state = {}
    for path in [Path(root), *sorted(Path(root).rglob("*"))]:
        st = os.lstat(path)
        meta = (st.st_mode, st.st_ino, st.st_nlink, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if stat.S_ISLNK(st.st_mode):
            content = os.readlink(path)
        elif stat.S_ISREG(st.st_mode):
            content = path.read_bytes()
        else:
            content = None
        state[str(path)] = (meta, content)
    return state
