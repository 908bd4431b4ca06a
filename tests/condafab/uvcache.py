"""Real uv caches, written by the uv binary of the ``uv`` package installing from local files offline.

A local index (wheels built by ``pipcache.wheel_bytes``, one sdist with an in-tree PEP 517
backend so a build needs nothing from an index) is installed with ``uv pip install --no-index
--find-links`` into several venvs and a ``--target`` directory; ``uv run --with`` leaves a cached
environment, and a wheel rewritten in place leaves its first archive without a link -- the
three things ``uv cache prune`` removes.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import io
from pathlib import Path

import uv

from condafab.pipcache import wheel_bytes

UV = uv.find_uv_bin()
WHEELS = (("alpha", "1.0"), ("alpha", "1.1"), ("alpha", "2.0"), ("beta", "0.5"))
SDIST = ("gamma", "0.1")
_BACKEND = '''"""A PEP 517 backend inside the sdist: building needs nothing from an index."""
import base64, hashlib, os, zipfile

NAME, VERSION = %r, %r
DIST_INFO = "%%s-%%s.dist-info" %% (NAME, VERSION)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {
        NAME + "/__init__.py": b"VALUE = 1\\n",
        DIST_INFO + "/METADATA": ("Metadata-Version: 2.1\\nName: %%s\\nVersion: %%s\\n" %% (NAME, VERSION)).encode(),
        DIST_INFO + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: backend\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }
    record = ["%%s,sha256=%%s,%%d" %% (path, base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode(),
                                    len(data)) for path, data in files.items()]
    files[DIST_INFO + "/RECORD"] = ("\\n".join(record + [DIST_INFO + "/RECORD,,"]) + "\\n").encode()
    name = "%%s-%%s-py3-none-any.whl" %% (NAME, VERSION)
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return name
'''


def _sdist(name: str, version: str) -> bytes:
    base = f"{name}-{version}"
    members = {
        "pyproject.toml": (f'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
                           f'[project]\nname = "{name}"\nversion = "{version}"\n').encode(),
        "backend.py": (_BACKEND % (name, version)).encode(),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for member, data in members.items():
            info = tarfile.TarInfo(f"{base}/{member}")
            info.size, info.mtime = len(data), 1704067200
            archive.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_index(directory: Path, seed: int) -> Path:
    """The ``--find-links`` directory: the wheels of :data:`WHEELS` and the sdist :data:`SDIST`."""
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for dist, version in WHEELS:
        (directory / f"{dist}-{version}-py3-none-any.whl").write_bytes(wheel_bytes(rng, dist, version, 4000))
    (directory / f"{SDIST[0]}-{SDIST[1]}.tar.gz").write_bytes(_sdist(*SDIST))
    return directory


def uv_env(home: Path, **extra: str) -> dict:
    """An environment of uv's own choosing only: no config files, no downloads, no colour."""
    env = {"PATH": os.defpath, "HOME": str(home), "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never",
           "UV_NO_PROGRESS": "1", "NO_COLOR": "1", "LC_ALL": "C"}
    env.update(extra)
    return env


def user_env(home: Path, **extra: str) -> dict:
    """:func:`uv_env` reading config files as a user's uv does."""
    env = uv_env(home, **extra)
    if "UV_NO_CONFIG" not in extra:
        del env["UV_NO_CONFIG"]
    return env


def run_uv(*args: str, env: dict, cwd: Path | None = None, binary: str = UV) -> str:
    """``uv <args>``; its stdout, or AssertionError with what it said."""
    proc = subprocess.run([binary, *args], env=env, cwd=cwd or env["HOME"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, f"uv {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
    return proc.stdout


def build_real_uv_cache(cache: Path, work: Path, seed: int = 0, python: str = sys.executable) -> dict:
    """Fill ``cache`` with real uv (venvs and a target under ``work``); what prune has to do is
    there: a cached environment, an archive left without a link, besides live wheel and sdist
    entries.  Returns where things are."""
    work.mkdir(parents=True, exist_ok=True)
    index = write_index(work / "index", seed)
    env = uv_env(work, UV_CACHE_DIR=str(cache))
    links = ["--no-index", "--find-links", str(index)]
    venvs = []
    for name, specs in (("venv-a", ["alpha==1.0", "beta"]), ("venv-b", ["alpha==1.1", "gamma"])):
        venv = work / name
        run_uv("venv", "-q", "--python", python, str(venv), env=env)
        run_uv("pip", "install", "-q", "--python", str(venv / "bin/python"), *links, *specs, env=env)
        venvs.append(venv)
    run_uv("pip", "install", "-q", "--target", str(work / "target"), *links, "alpha==2.0", env=env)
    run_uv("run", "-q", "--no-project", "--python", python, *links, "--with", "beta", "python", "-c",
           "import beta", env=env)
    # A new build of the same file name: uv unpacks it anew and relinks, the old archive dangles.
    wheel = index / "alpha-1.1-py3-none-any.whl"
    wheel.write_bytes(wheel_bytes(random.Random(seed + 1), "alpha", "1.1", 4000))
    run_uv("pip", "install", "-q", "--python", str(venvs[1] / "bin/python"), *links, "--reinstall-package", "alpha",
           "--refresh-package", "alpha", "alpha==1.1", env=env)
    return {"path": str(cache), "index": str(index), "venvs": [str(v) for v in venvs], "target": str(work / "target")}


_TEMPLATE: list = []


def real_uv_cache(destination: Path) -> Path:
    """A copy of one real uv cache built once per process (building takes seconds): for tests
    that need a real cache but not its hard links into venvs."""
    if not _TEMPLATE:
        work = Path(tempfile.mkdtemp(prefix="uvcache-"))
        _TEMPLATE.append(work / "cache")
        build_real_uv_cache(work / "cache", work / "work")
    return copy_cache(_TEMPLATE[0], destination)


def manifest(cache: Path) -> dict:
    """What a cache holds, counted here from ``lstat`` (not by the module under test), in the
    shape of ``pipcache``'s manifests: per bucket and ``root`` (the files at the top) its items
    (regular files), files, symlinks, apparent bytes and the span of its files' mtimes."""
    sections = {}
    for path in sorted(Path(cache).rglob("*")):
        st = os.lstat(path)
        top = path.relative_to(cache).parts[0]
        name = top if (Path(cache) / top).is_dir() and not (Path(cache) / top).is_symlink() else "root"
        counts = sections.setdefault(name, {"items": 0, "files": 0, "symlinks": 0, "apparent_bytes": 0,
                                            "oldest_mtime": None, "newest_mtime": None})
        if stat.S_ISREG(st.st_mode):
            mtime = int(st.st_mtime)
            counts["items"] += 1
            counts["files"] += 1
            counts["apparent_bytes"] += st.st_size
            counts["oldest_mtime"] = mtime if counts["oldest_mtime"] is None else min(counts["oldest_mtime"], mtime)
            counts["newest_mtime"] = mtime if counts["newest_mtime"] is None else max(counts["newest_mtime"], mtime)
        elif stat.S_ISLNK(st.st_mode):
            counts["symlinks"] += 1
            counts["apparent_bytes"] += st.st_size
    totals = {key: sum(s[key] for s in sections.values()) for key in ("items", "files", "symlinks", "apparent_bytes")}
    return {"path": str(cache), "sections": sections, "tool": "uv", **totals}


def tree(root: Path) -> dict:
    """Every path below ``root`` with its kind and bytes (or link target): what two caches are
    compared by."""
    found = {}
    for path in sorted(Path(root).rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            found[rel] = ("dir", None)
        else:
            found[rel] = ("file", path.read_bytes())
    return found


def copy_cache(source: Path, destination: Path) -> Path:
    """A copy with links kept as links (uv's are relative, so they stay inside the copy)."""
    shutil.copytree(source, destination, symlinks=True)
    return destination
