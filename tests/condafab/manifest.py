"""What a fixture build intended: the answer key tests compare module output against.

All paths are in-host absolute paths (``/opt/conda/pkgs``); ``Manifest.real()`` maps one to the
controller.  Lists are sorted so two builds with one seed give equal manifests.  Byte counts are
the builder's own ledger (what it wrote), except ``disk_bytes``, which only a walk of the built
tree can know (block allocation is the filesystem's business).
"""

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

HARDLINK, SOFTLINK, COPY = 1, 2, 3  # conda's LinkType values, as written in ``link.type``


@dataclass
class CacheManifest:
    """One package cache (a ``pkgs_dirs`` entry) and what lives in it."""

    path: str
    owner: Optional[str]
    writable: bool  # urls.txt present: the only caches `conda clean` touches
    tarballs: List[str] = field(default_factory=list)  # package file names (fn)
    extracted: List[str] = field(default_factory=list)  # extracted dir names (dist)
    tarball_only: List[str] = field(default_factory=list)  # dists: archive, no extracted dir
    extracted_only: List[str] = field(default_factory=list)  # dists: extracted dir, archive gone
    metadata_only: List[str] = field(default_factory=list)  # extracted dists with only info/
    internal_hardlink: List[str] = field(default_factory=list)  # extracted dists with 2 names on 1 inode
    partial: List[str] = field(default_factory=list)  # *.partial downloads
    locks: List[str] = field(default_factory=list)  # mamba/rattler *.lock files
    tempfiles: List[str] = field(default_factory=list)  # *.mamba_trash
    trash: List[str] = field(default_factory=list)  # entries of .trash/
    logs: List[str] = field(default_factory=list)  # entries of .logs/
    index_cache: List[str] = field(default_factory=list)  # entries of cache/
    referenced_by: Dict[str, List[str]] = field(default_factory=dict)  # dist -> env prefixes linked from here
    orphans: List[str] = field(default_factory=list)  # extracted dists no environment references
    unused_tarballs: List[str] = field(default_factory=list)  # fns whose dist no environment references
    multiply_linked: List[str] = field(default_factory=list)  # extracted dists with a file st_nlink > 1
    softlink_only: List[str] = field(default_factory=list)  # referenced only by soft-linked envs (conda#16614)
    tarball_bytes: Dict[str, int] = field(default_factory=dict)  # fn -> size
    folders: Dict[str, str] = field(default_factory=dict)  # dist -> its mamba >= 2.6 channel folder, when not flat
    apparent_bytes: int = 0  # st_size of every file/symlink name under the cache
    unique_bytes: int = 0  # st_size of every non-directory inode once
    disk_bytes: int = 0  # measured: st_blocks*512 of every inode once, directories included

    @property
    def counts(self):
        return {
            "tarballs": len(self.tarballs),
            "extracted": len(self.extracted),
            "orphans": len(self.orphans),
            "unused_tarballs": len(self.unused_tarballs),
            "metadata_only": len(self.metadata_only),
            "softlink_only": len(self.softlink_only),
        }


@dataclass
class EnvManifest:
    """One environment (the root prefix's base env included)."""

    prefix: str
    name: str
    owner: Optional[str]
    link_type: int  # HARDLINK, SOFTLINK or COPY for every file of the env
    known: bool  # discoverable by conda: in an envs dir, a root, or some environments.txt
    packages: List[str] = field(default_factory=list)  # dists with a conda-meta record
    sources: Dict[str, str] = field(default_factory=dict)  # dist -> cache the files came from
    files: int = 0
    apparent_bytes: int = 0  # payload names + conda-meta, as `find -printf %s` sums them
    mamba_trash: List[str] = field(default_factory=list)  # prefix-relative leftovers of mamba (files, dirs)


@dataclass
class InstallationManifest:
    root: str
    conda_version: str
    owner: Optional[str]
    pkgs_dir: str
    envs: List[str] = field(default_factory=list)
    tool: str = "conda"  # "mamba": a micromamba root prefix, no conda in it


@dataclass
class UserManifest:
    name: str
    uid: int
    gid: int
    home: str
    environments_txt: List[str] = field(default_factory=list)  # entries, in file order
    stale_entries: List[str] = field(default_factory=list)  # entries naming no environment
    pkgs_dirs: List[str] = field(default_factory=list)  # caches owned by the user
    pip_cache: Optional[str] = None
    uv_cache: Optional[str] = None
    expected_pkgs_dirs: Optional[List[str]] = None  # effective pkgs_dirs for this user, when the layout pins it


@dataclass
class Manifest:
    fsroot: str
    seed: int
    layout: str
    installations: List[InstallationManifest] = field(default_factory=list)
    caches: Dict[str, CacheManifest] = field(default_factory=dict)
    envs: Dict[str, EnvManifest] = field(default_factory=dict)
    users: Dict[str, UserManifest] = field(default_factory=dict)
    condarc: Dict[str, str] = field(default_factory=dict)  # path -> text of every config file written
    malformed_condarc: List[str] = field(default_factory=list)
    environment: Dict[str, str] = field(default_factory=dict)  # /etc/environment variables
    pip_results: Dict[str, object] = field(default_factory=dict)  # what pipcache returned, per cache dir
    seconds: float = 0.0

    def real(self, host_path):
        """Controller path of an in-host path of this fixture."""
        return Path(self.fsroot) / str(host_path).lstrip("/")

    def cache(self, path) -> CacheManifest:
        return self.caches[str(path)]

    def env(self, prefix) -> EnvManifest:
        return self.envs[str(prefix)]

    def to_dict(self):
        data = asdict(self)
        for path, cache in self.caches.items():
            data["caches"][path]["counts"] = cache.counts
        return data

    def to_json(self, path=None):
        """The manifest as JSON text (timings dropped: equal seeds give equal text); written to
        ``path`` when given."""
        data = self.to_dict()
        data.pop("seconds")
        text = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    def summary(self):
        """A few lines for humans (the CLI prints them)."""
        lines = [f"layout {self.layout} seed {self.seed} under {self.fsroot} in {self.seconds:.2f} s"]
        for cache in self.caches.values():
            c = cache.counts
            lines.append(
                f"  cache {cache.path}: {c['tarballs']} tarballs, {c['extracted']} extracted, {c['orphans']} orphans, "
                f"{c['unused_tarballs']} unused tarballs, {cache.apparent_bytes} apparent B, {cache.disk_bytes} disk B"
            )
        links = {HARDLINK: "hardlink", SOFTLINK: "softlink", COPY: "copy"}
        for env in self.envs.values():
            lines.append(f"  env {env.prefix}: {len(env.packages)} packages, {env.files} files, {links[env.link_type]}")
        for user in self.users.values():
            lines.append(f"  user {user.name}: {len(user.environments_txt)} environments.txt entries ({len(user.stale_entries)} stale)")
        return "\n".join(lines)
