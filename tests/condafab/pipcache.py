"""Realistic pip caches on disk, deterministic per seed (uv caches are written by the real uv,
``condafab.uvcache``).

The layout is the one pip writes (``network/cache.py``, ``cache.py``, ``self_outdated_check.py``),
so the facts and cleanup modules are tested against the real shape: hashed directory fan-out,
metadata next to bodies, real zip wheels.  The builder returns a manifest of what it wrote,
counted while writing, so tests compare module output with an independent number.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import stat
import struct
import time
import zipfile
from pathlib import Path

INDEX = "https://index.example.invalid"
DAY = 86400
# Real pip sections in the order pip's `cache info` lists them.
PIP_SECTIONS = ("http-v2", "http", "wheels", "selfcheck")
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
