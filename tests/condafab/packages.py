"""Conda packages as values, and their real archives.

A :class:`Package` holds everything a channel would serve: its ``info/`` metadata and its payload
files (bytes in memory, small on purpose).  :class:`Archive` is the package file a download would
leave in ``pkgs/``: a ``.conda`` zip (``metadata.json``, ``pkg-*.tar.zst``, ``info-*.tar.zst``) or a
``.tar.bz2``, built with the standard formats so that any conda tooling can open it, with the md5,
sha256 and size that ``repodata_record.json`` and PrefixRecords must quote.
"""

import bz2
import hashlib
import io
import json
import random
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from typing import Optional

import zstandard

# Channel base URLs.  Hosts are reserved example names: fixtures never point at a live service.
CONDA_FORGE = "https://conda.example.org/conda-forge"
DEFAULTS = "https://repo.example.org/pkgs/main"

# Fast zstd level: archives only need to be valid, not small.
_ZSTD = zstandard.ZstdCompressor(level=3)
EPOCH = 1_700_000_000  # fixture clock: every timestamp is an offset from here (2023-11-14)
CONDA_VERSION = "24.11.3"  # the conda a root prefix runs unless a layout says otherwise


def dumps(obj):
    """JSON with sorted keys (stable bytes per seed).  conda indents its records; readers do not
    care, and the unindented form is the C encoder's, several times faster on 100k records."""
    return (json.dumps(obj, sort_keys=True) + "\n").encode()


@dataclass(frozen=True)
class Payload:
    """One file of a package.  ``link_to`` names another payload path in the same package that
    this one is a hard link of (tar ``LNKTYPE``): extracting gives two names, one inode."""

    path: str
    data: bytes
    mode: int = 0o644
    link_to: Optional[str] = None

    @cached_property
    def sha256(self):
        return hashlib.sha256(self.data).hexdigest()


@dataclass(eq=False)
class Package:
    """A conda package as a channel serves it (identity is ``channel/subdir::dist``)."""

    name: str
    version: str
    build: str
    build_number: int
    subdir: str
    channel: str
    ext: str  # ".conda" or ".tar.bz2"
    timestamp: int  # seconds
    depends: tuple = ()
    files: tuple = ()
    license: str = "BSD-3-Clause"
    extra_info: dict = field(default_factory=dict)

    @property
    def dist(self):
        """``<name>-<version>-<build>``: extracted dir name and conda-meta record stem."""
        return f"{self.name}-{self.version}-{self.build}"

    @property
    def fn(self):
        return self.dist + self.ext

    @property
    def channel_url(self):
        """Channel with subdir, as conda writes it into records (``channel`` field)."""
        return f"{self.channel}/{self.subdir}"

    @property
    def url(self):
        return f"{self.channel_url}/{self.fn}"

    @property
    def metadata_only(self):
        """True for packages with nothing but ``info/`` (e.g. ``_libgcc_mutex``, ``python_abi``)."""
        return not self.files

    @property
    def internal_hardlinks(self):
        return tuple(p for p in self.files if p.link_to)

    def index_json(self):
        """``info/index.json``: what the package says about itself."""
        data = {
            "arch": None if self.subdir == "noarch" else "x86_64",
            "build": self.build,
            "build_number": self.build_number,
            "depends": list(self.depends),
            "license": self.license,
            "name": self.name,
            "platform": None if self.subdir == "noarch" else "linux",
            "subdir": self.subdir,
            "timestamp": self.timestamp * 1000,
            "version": self.version,
        }
        if self.subdir == "noarch":
            data["noarch"] = "generic"
        data.update(self.extra_info)
        return data

    def paths_json(self, path_type="hardlink"):
        """``info/paths.json`` (paths_version 1): every payload file with its sha256 and size.

        PrefixRecords carry the same list as ``paths_data`` with the type the file was linked by.
        """
        return {
            "paths": [
                {
                    "_path": p.path,
                    "path_type": path_type,
                    "sha256": p.sha256,
                    "size_in_bytes": len(p.data),
                }
                for p in sorted(self.files, key=lambda p: p.path)
            ],
            "paths_version": 1,
        }

    def info_files(self):
        """The ``info/`` members shipped inside the archive, as ``(relative path, bytes)``."""
        about = {"home": f"https://example.org/{self.name}", "license": self.license, "summary": f"The {self.name} package"}
        listing = "".join(p.path + "\n" for p in sorted(self.files, key=lambda p: p.path))
        return (
            ("info/about.json", dumps(about)),
            ("info/files", listing.encode()),
            ("info/index.json", dumps(self.index_json())),
            ("info/paths.json", dumps(self.paths_json())),
        )

    def repodata_record(self):
        """``info/repodata_record.json``: index.json plus where the archive came from and its hashes
        (a fresh dict: PrefixRecords extend it).

        conda writes it after extraction; it describes the archive even once the archive is gone.
        """
        archive = self.archive
        record = self.index_json()
        record.update(
            {
                "channel": self.channel_url,
                "fn": self.fn,
                "md5": archive.md5,
                "sha256": archive.sha256,
                "size": archive.size,
                "url": self.url,
            }
        )
        return record

    @cached_property
    def archive(self):
        """The package file (built once per package, reused by every cache holding it)."""
        return Archive.build(self)


@dataclass(frozen=True)
class Archive:
    data: bytes
    md5: str
    sha256: str

    @property
    def size(self):
        return len(self.data)

    @classmethod
    def build(cls, pkg):
        data = _conda_v2(pkg) if pkg.ext == ".conda" else _tar_bz2(pkg)
        return cls(data, hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


def _tar(members, mtime):
    """An uncompressed ustar archive of ``(name, bytes, mode, link_to)``: owner 0, fixed mtime, so
    equal seeds give equal bytes.

    Written by hand because ``tarfile`` spends ~40% of a big fixture's build in header objects;
    the format is plain POSIX ustar, which ``tarfile``, GNU tar and conda all read.
    """
    blocks = []
    for name, data, mode, link_to in members:
        if link_to:
            blocks.append(_ustar_header(name, 0, mode, mtime, b"1", link_to))
        else:
            blocks.append(_ustar_header(name, len(data), mode, mtime, b"0", ""))
            blocks.append(data)
            if len(data) % _BLOCK:
                blocks.append(bytes(_BLOCK - len(data) % _BLOCK))
    body = b"".join(blocks) + bytes(2 * _BLOCK)  # end-of-archive marker
    return body + bytes(-len(body) % _RECORD)  # padded to whole records, as tar writes them


_BLOCK = 512
_RECORD = 20 * _BLOCK


def _ustar_header(name, size, mode, mtime, typeflag, linkname):
    raw = name.encode()
    prefix = b""
    if len(raw) > 100:  # ustar keeps long names as prefix/name, split at a slash
        cut = raw.rindex(b"/", 0, 156)
        prefix, raw = raw[:cut], raw[cut + 1:]
    header = b"".join(
        (
            raw.ljust(100, b"\0"),
            b"%07o\0" % mode,
            b"%07o\0" % 0,
            b"%07o\0" % 0,
            b"%011o\0" % size,
            b"%011o\0" % mtime,
            b" " * 8,  # checksum, computed over the header with this field as spaces
            typeflag,
            linkname.encode().ljust(100, b"\0"),
            b"ustar\x0000",
            bytes(32 + 32 + 8 + 8),  # uname, gname, devmajor, devminor
            prefix.ljust(155, b"\0"),
            bytes(12),
        )
    )
    checksum = b"%06o\0 " % sum(header)
    return header[:148] + checksum + header[156:]


def _info_members(pkg):
    return [(name, data, 0o644, None) for name, data in pkg.info_files()]


def _payload_members(pkg):
    return [(p.path, p.data, p.mode, p.link_to) for p in pkg.files]


def _conda_v2(pkg):
    """``.conda``: an uncompressed zip of metadata.json, pkg-<dist>.tar.zst, info-<dist>.tar.zst."""
    buf = io.BytesIO()
    stamp = (2023, 11, 14, 0, 0, 0)
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        parts = (
            ("metadata.json", json.dumps({"conda_pkg_format_version": 2}).encode()),
            (f"pkg-{pkg.dist}.tar.zst", _ZSTD.compress(_tar(_payload_members(pkg), pkg.timestamp))),
            (f"info-{pkg.dist}.tar.zst", _ZSTD.compress(_tar(_info_members(pkg), pkg.timestamp))),
        )
        for name, data in parts:
            zf.writestr(zipfile.ZipInfo(name, date_time=stamp), data)
    return buf.getvalue()


def _tar_bz2(pkg):
    """``.tar.bz2``: one tar, info/ first then the payload, bzip2-compressed."""
    return bz2.compress(_tar(_info_members(pkg) + _payload_members(pkg), pkg.timestamp), 9)


# --- generating a catalog -------------------------------------------------------------------

_SYLLABLES = ("ar", "bo", "cu", "da", "el", "fi", "go", "ha", "io", "ju", "ka", "lo", "mu", "ne", "op", "py", "qu", "ri", "su", "ta", "ul", "vo", "xi", "ze")
_LAYOUT = (  # (directory template, suffix, mode): where payload files go, as in real packages
    ("lib/python3.11/site-packages/{name}", ".py", 0o644),
    ("lib", ".so", 0o755),
    ("include", ".h", 0o644),
    ("share/doc/{name}", ".txt", 0o644),
    ("bin", "", 0o755),
)


def _payload(rng, name, count, fixed=()):
    """``count`` small files (32-400 bytes) spread over the usual prefix directories.

    Content is random per seed so every file has its own sha256, and small so that thousands of
    packages build in seconds.  ``fixed`` are ``(path, bytes, mode)`` files that must be present.
    """
    files = [Payload(path, data, mode) for path, data, mode in fixed]
    for i in range(count - len(files)):
        directory, suffix, mode = _LAYOUT[i % len(_LAYOUT)]
        path = f"{directory.format(name=name)}/{name}_{i}{suffix}"
        body = rng.randbytes(rng.randint(16, 200)).hex()
        files.append(Payload(path, f"# {name} {path}\n{body}\n".encode(), mode))
    return files


def _build_string(rng, number, prefix="h"):
    return f"{prefix}{rng.getrandbits(28):07x}_{number}"


class Catalog:
    """A deterministic set of packages: the well-known ones every installation has, the awkward
    ones the spec calls out, and generated ones up to the requested count.

    Names of the special packages are attributes so layouts can ask for them.
    """

    def __init__(self, rng: random.Random, packages: int, files: int, conda_version: str, python_version: str = "3.11.9"):
        self.rng = rng
        self.files = files
        self.packages = []
        self.python = self._add("python", python_version, "hab00c5b_0_cpython", files, fixed=(("bin/python3.11", b"\x7fELF python\n", 0o755),))
        self.conda = self.conda_package(conda_version)
        # Metadata-only: nothing but info/; `conda clean -p` sees no hard link and calls them unused.
        self.libgcc_mutex = self._add("_libgcc_mutex", "0.1", "conda_forge", 0, subdir="linux-64")
        self.python_abi = self._add("python_abi", "3.11", "5_cp311", 0, depends=("python 3.11.*",))
        self.git = self._with_internal_hardlink()
        # Several versions of one package: a cache accumulates them as environments get updated.
        self.numpy = [self._add("numpy", v, _build_string(rng, 0, "py311h"), files, depends=("python", "python_abi")) for v in ("1.26.4", "2.0.2", "2.1.3")]
        self.base = [self.libgcc_mutex, self.python, self.python_abi, self.conda]
        while len(self.packages) < packages:
            self._generated()

    def conda_package(self, version):
        """A ``conda`` package; its record in ``<root>/conda-meta`` tells which conda a root runs."""
        existing = [p for p in self.packages if p.name == "conda" and p.version == version]
        if existing:
            return existing[0]
        fixed = (
            ("bin/conda", b"#!/usr/bin/env python\nimport conda.cli\n", 0o755),
            ("condabin/conda", b"#!/bin/sh\nexec python -m conda \"$@\"\n", 0o755),
            ("lib/python3.11/site-packages/conda/__init__.py", f'__version__ = "{version}"\n'.encode(), 0o644),
        )
        return self._add("conda", version, "py311h38be061_0", max(self.files, len(fixed)), fixed=fixed, depends=("python >=3.11,<3.12.0a0",))

    def _with_internal_hardlink(self):
        """``git``: ``bin/git`` and ``libexec/git-core/git`` are one inode inside the package, so
        every extracted copy has a file with ``st_nlink > 1`` (why conda#7597 never removes it)."""
        files = _payload(self.rng, "git", max(self.files - 1, 1), fixed=(("bin/git", b"\x7fELF git\n" + self.rng.randbytes(64), 0o755),))
        files.append(Payload("libexec/git-core/git", files[0].data, 0o755, link_to="bin/git"))
        build = _build_string(self.rng, 0, "pl5321h")
        return self._append(Package("git", "2.47.1", build, 0, "linux-64", CONDA_FORGE, ".conda", self._stamp(), ("_libgcc_mutex",), tuple(files)))

    def _generated(self):
        rng = self.rng
        name = "".join(rng.choices(_SYLLABLES, k=3)) + str(len(self.packages))
        version = f"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
        earlier = [p.name for p in self.packages if p.name != name]
        depends = tuple(sorted(set(rng.sample(earlier, k=min(len(earlier), rng.randint(0, 3))))))
        subdir = "noarch" if rng.random() < 0.15 else "linux-64"
        channel = DEFAULTS if rng.random() < 0.2 else CONDA_FORGE
        number = rng.randint(0, 3)
        self._add(name, version, _build_string(rng, number), self.files, depends=depends, subdir=subdir, channel=channel, number=number)

    def _add(self, name, version, build, count, fixed=(), depends=(), subdir="linux-64", channel=CONDA_FORGE, number=0):
        ext = ".tar.bz2" if self.rng.random() < 0.2 else ".conda"  # bz2 is slow to write, and rarer now
        files = tuple(_payload(self.rng, name, count, fixed)) if count else ()
        return self._append(Package(name, version, build, number, subdir, channel, ext, self._stamp(), tuple(depends), files))

    def _append(self, pkg):
        self.packages.append(pkg)
        return pkg

    def _stamp(self):
        return EPOCH + self.rng.randint(0, 300 * 86400)

    def pick(self, rng: random.Random, share: float, among=None, always=()):
        """A subset as an environment would have it: at most one version per name, about
        ``share`` of ``among`` (default: the whole catalog), plus ``always``."""
        chosen = {p.name: p for p in always}
        pool = list(among if among is not None else self.packages)
        rng.shuffle(pool)
        for pkg in pool[: round(len(pool) * share)]:
            chosen.setdefault(pkg.name, pkg)
        return sorted(chosen.values(), key=lambda p: p.dist)
