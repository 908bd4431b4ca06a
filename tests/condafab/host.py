"""The building blocks of a fixture host: caches, installations, environments, users, config.

A :class:`HostBuilder` owns one filesystem root, one seeded random stream and the manifest being
filled.  Layouts (``layouts.py``) and the scalable fixture (``scale.py``) are short scripts over
it; tests that need an unusual tree can call it directly::

    host = HostBuilder(tmp_path, seed=7)
    catalog = host.catalog(packages=30, files=5)
    inst = host.install("/opt/conda", catalog)
    host.env("/opt/conda/envs/web", catalog.pick(host.rng, 0.3, among=inst.cache.extracted_packages), inst.cache)
    manifest = host.finish()
"""

import hashlib
import os
import random
import time
from datetime import datetime, timezone
from urllib.parse import urlparse

from condafab.fsroot import FsRoot, Ledger
from condafab.manifest import COPY, HARDLINK, SOFTLINK, CacheManifest, EnvManifest, InstallationManifest, Manifest, UserManifest
from condafab.packages import CONDA_VERSION, EPOCH, Catalog, dumps


def _stamp(seconds):
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _channel_name(channel):
    """``https://host/conda-forge`` -> ``conda-forge``; ``https://host/pkgs/main`` -> ``pkgs/main``."""
    return urlparse(channel).path.strip("/")


def mamba_cache_folder(url):
    """Where mamba >= 2.6 keeps a package inside a cache, from its URL: libmamba
    ``core/package_cache.cpp`` ``package_cache_folder_relative_path`` takes the URL's directory
    (token and credentials removed; fixture URLs have none), turns ``://`` into ``/`` and ``:``
    into ``_``: ``https://conda.anaconda.org/conda-forge/noarch/x.conda`` ->
    ``https/conda.anaconda.org/conda-forge/noarch``."""
    parsed = urlparse(url)
    directory = parsed.path.rsplit("/", 1)[0]
    return f"{parsed.scheme}/{parsed.netloc.replace(':', '_')}{directory}"


def _at_least_one_of_each(items, keep):
    """Small caches must still show both partial states: turn the last free "both" items into
    a tarball-only and an extracted-only one when chance gave none."""
    items = list(items)
    free = [i for i, (pkg, tarball, extracted) in enumerate(items) if tarball and extracted and pkg.dist not in keep]
    for state in ((True, False), (False, True)):
        if free and not any((tarball, extracted) == state for _pkg, tarball, extracted in items):
            index = free.pop()
            items[index] = (items[index][0], *state)
    return items


class CacheBuilder:
    """One package cache directory being filled: archives, extracted dirs and the debris conda,
    mamba and interrupted downloads leave next to them."""

    def __init__(self, host, path, owner=None, writable=True, folders=False):
        self.host = host
        self.folders = folders  # mamba >= 2.6's channel folders instead of conda's flat layout
        self.fs = host.fs
        self.path = str(path)
        self.owner = owner
        self.writable = writable
        self.ledger = Ledger()
        self.packages = {}  # dist -> Package, whatever state it is in here
        self.extracted = {}  # dist -> Package with an extracted dir
        self.tarballs = {}  # dist -> Package with an archive
        self._urls = []
        self.manifest = CacheManifest(self.path, owner.name if owner else None, writable)
        self.fs.makedirs(self.real())
        self.fs.own(self.path, owner)

    @property
    def extracted_packages(self):
        return list(self.extracted.values())

    def real(self, *parts):
        """Controller path (a string) of the cache or of an entry in it."""
        return str(self.fs.real(os.path.join(self.path, *parts)))

    def place(self, pkg, name=None):
        """A package's entry (its extracted dir, or ``name``) relative to the cache."""
        name = name or pkg.dist
        return f"{mamba_cache_folder(pkg.url)}/{name}" if self.folders else name

    def add(self, pkg, tarball=True, extracted=True):
        """Put ``pkg`` in the cache as its archive, its extracted dir, or both."""
        self.add_many([(pkg, tarball, extracted)])

    def add_mix(self, packages, tarball_only=0.1, extracted_only=0.1, keep=()):
        """Add many packages; about the given shares lose their extracted dir or their archive
        (what `conda clean -p` or `-t` leave behind).  Packages in ``keep`` get both."""
        rng = self.host.rng
        keep = {p.dist for p in keep}
        items = []
        for pkg in packages:
            roll = rng.random()
            if pkg.dist in keep or roll >= tarball_only + extracted_only:
                items.append((pkg, True, True))
            else:
                items.append((pkg, roll < tarball_only, roll >= tarball_only))
        self.add_many(_at_least_one_of_each(items, keep))

    def add_many(self, items):
        """Write and record ``(package, tarball?, extracted?)`` items."""
        for pkg, tarball, extracted in items:
            self._write(pkg, tarball, extracted)
            self.packages[pkg.dist] = pkg
            if self.folders:
                self.manifest.folders[pkg.dist] = mamba_cache_folder(pkg.url)
            if tarball:
                self.tarballs[pkg.dist] = pkg
                self.manifest.tarballs.append(pkg.fn)
                self.manifest.tarball_bytes[pkg.fn] = pkg.archive.size
            if extracted:
                self.extracted[pkg.dist] = pkg
                self.manifest.extracted.append(pkg.dist)
                if pkg.metadata_only:
                    self.manifest.metadata_only.append(pkg.dist)
                if pkg.internal_hardlinks:
                    self.manifest.internal_hardlink.append(pkg.dist)
            self._urls.append(pkg.url)

    def _write(self, pkg, tarball, extracted):
        ledger = self.ledger
        if tarball:
            real = self.real(self.place(pkg, pkg.fn))
            self.fs.write_real(real, pkg.archive.data, ledger)
            downloaded = pkg.timestamp + 86400
            os.utime(real, (downloaded, downloaded))
        if extracted:
            self._write_extracted(pkg, ledger)

    def _write_extracted(self, pkg, ledger):
        """``<dist>/`` as conda extracts it: info/ (plus repodata_record.json) and the payload,
        internal hard links restored as hard links."""
        top = self.real(self.place(pkg)) + "/"
        for name, data in pkg.info_files():
            self.fs.write_real(top + name, data, ledger)
        self.fs.write_real(top + "info/repodata_record.json", dumps(pkg.repodata_record()), ledger)
        for payload in pkg.files:
            if not payload.link_to:
                self.fs.write_real(top + payload.path, payload.data, ledger, payload.mode)
        for payload in pkg.internal_hardlinks:
            self.fs.link_real(top + payload.link_to, top + payload.path, len(payload.data), ledger)

    def add_debris(self):
        """Index cache, trash, logs, a partial download, mamba locks and trash files."""
        rng = self.host.rng
        m = self.manifest
        for channel_url in sorted({p.channel_url for p in self.packages.values()}):
            self._index_cache(channel_url)
        # an interrupted download: a third of an archive this cache does not hold complete
        pending = [p for p in self.host.catalog_packages if p.dist not in self.tarballs]
        if pending:
            pkg = rng.choice(pending)
            partial = self.real(pkg.fn + ".partial")
            self.fs.write_real(partial, pkg.archive.data[: max(1, pkg.archive.size // 3)], self.ledger)
            # interrupted when the package was new, long ago: stale, not a download in progress
            interrupted = pkg.timestamp + 3600
            os.utime(partial, (interrupted, interrupted))
            m.partial.append(pkg.fn + ".partial")
        for pkg in sorted(rng.sample(list(self.extracted.values()), k=min(2, len(self.extracted))), key=lambda p: p.dist):
            # mamba >= 2.6 locks an archive while extracting it (<file>.lock, next to it)
            lock = self.place(pkg, pkg.fn + ".lock") if self.folders else pkg.dist + ".lock"
            self.fs.write_real(self.real(lock), b"", self.ledger)
            m.locks.append(lock)
        if self.folders:  # and the whole cache for an install: <pkgs_dir>/<dirname>.lock
            lock = os.path.basename(self.path) + ".lock"
            self.fs.write_real(self.real(lock), b"", self.ledger)
            m.locks.append(lock)
        name = f"{rng.getrandbits(64):016x}.mamba_trash"
        if self.folders:
            name = self.place(rng.choice(list(self.packages.values())), name)
        self.fs.write_real(self.real(name), rng.randbytes(300), self.ledger)
        m.tempfiles.append(name)
        # conda moves what it cannot delete (open files) into .trash/ under random names
        trash = f"{rng.getrandbits(128):032x}.c~"
        self.fs.write_real(self.real(".trash", trash), rng.randbytes(500), self.ledger)
        m.trash.append(trash)
        log = f"{_stamp(EPOCH + rng.randint(0, 86400 * 300)).replace(' ', '_').replace(':', '')}.log"
        self.fs.write_real(self.real(".logs", log), b"DEBUG conda.core.link: linking done\n" * rng.randint(1, 40), self.ledger)
        m.logs.append(log)

    def _index_cache(self, channel_url):
        """``cache/<md5(url)[:8]>.json`` + ``.info.json``, as conda's repodata fetch leaves them."""
        key = hashlib.md5((channel_url + "/").encode()).hexdigest()[:8]
        records = {"packages": {}, "packages.conda": {}}
        for pkg in sorted(self.packages.values(), key=lambda p: p.fn):
            if pkg.channel_url == channel_url:
                entry = pkg.index_json()
                entry.update({"md5": pkg.archive.md5, "sha256": pkg.archive.sha256, "size": pkg.archive.size})
                records["packages.conda" if pkg.ext == ".conda" else "packages"][pkg.fn] = entry
        subdir = channel_url.rsplit("/", 1)[1]
        repodata = dict(records, info={"subdir": subdir}, repodata_version=1)
        body = dumps(repodata)
        self.fs.write_real(self.real("cache", key + ".json"), body, self.ledger)
        info = {"url": channel_url + "/repodata.json", "etag": f'W/"{key}"', "mod": "Tue, 14 Nov 2023 00:00:00 GMT",
                "cache_control": "public, max-age=1200", "size": len(body), "mtime_ns": EPOCH * 10**9, "refresh_ns": EPOCH * 10**9}
        self.fs.write_real(self.real("cache", key + ".info.json"), dumps(info), self.ledger)
        self.manifest.index_cache += [key + ".info.json", key + ".json"]

    def close(self):
        """Write the URL logs: ``urls.txt`` (whose presence makes the cache writable for conda)
        and the legacy empty ``urls``."""
        if self.writable:
            self.fs.write_real(self.real("urls.txt"), "".join(u + "\n" for u in self._urls).encode(), self.ledger)
            self.fs.write_real(self.real("urls"), b"", self.ledger)


class Installation:
    """A root prefix: its cache and its base environment."""

    def __init__(self, manifest, cache, base):
        self.manifest = manifest
        self.cache = cache
        self.base = base

    @property
    def root(self):
        return self.manifest.root


class HostBuilder:
    """Fills one filesystem root; ``finish()`` returns the :class:`Manifest`."""

    def __init__(self, fsroot, seed, layout="custom"):
        self.fs = FsRoot(fsroot)
        self.seed = seed
        self.rng = random.Random(seed)
        self.manifest = Manifest(str(self.fs.root), seed, layout)
        self.caches = {}
        self.catalog_packages = []
        self._started = time.perf_counter()
        self._clock = EPOCH + 30 * 86400  # history dates move forward as the host is "used"

    def catalog(self, packages, files, conda_version=CONDA_VERSION):
        """A fresh catalog on this host's random stream (call once per channel view needed)."""
        catalog = Catalog(self.rng, packages, files, conda_version)
        self.catalog_packages = catalog.packages
        return catalog

    def _tick(self):
        self._clock += self.rng.randint(3600, 20 * 86400)
        return self._clock

    # -- caches and installations --------------------------------------------------------------

    def cache(self, path, owner=None, writable=True, folders=False):
        """A package cache at ``path`` (created empty; fill it with ``add``/``add_mix``), in
        mamba >= 2.6's channel folders when ``folders``."""
        cache = CacheBuilder(self, path, owner, writable, folders)
        self.caches[cache.path] = cache
        return cache

    def install(self, root, catalog, conda_version=None, owner=None, pkgs_dir=None):
        """A conda root prefix as an installer leaves it: ``<root>/pkgs`` (or ``pkgs_dir``) with
        the base packages, the base env hard-linked from it, ``conda-meta/history``, ``envs/``."""
        conda = catalog.conda_package(conda_version) if conda_version else catalog.conda
        base = [p for p in catalog.base if p.name != "conda"] + [conda]
        cache = self.caches.get(str(pkgs_dir)) or self.cache(pkgs_dir or f"{root}/pkgs", owner)
        for pkg in base:
            if pkg.dist not in cache.extracted:
                cache.add(pkg)
        record = InstallationManifest(root, conda.version, owner.name if owner else None, cache.path)
        self.manifest.installations.append(record)
        self.fs.makedirs(str(self.fs.real(f"{root}/envs")))
        self.fs.own(root, owner)
        inst = Installation(record, cache, None)
        inst.base = self.env(root, base, cache, owner=owner, name="base", requested=["conda", "python"], conda=conda.version, installation=inst)
        return inst

    def micromamba(self, root, owner=None, folders=True, pkgs_dir=None):
        """A micromamba root prefix as micromamba leaves it: ``pkgs/`` (its cache, mamba >= 2.6's
        channel folders unless ``folders=False``) and ``envs/``, no base environment and no conda
        (libmamba ``api/configuration.cpp``: a root needs neither)."""
        cache = self.caches.get(str(pkgs_dir)) or self.cache(pkgs_dir or f"{root}/pkgs", owner, folders=folders)
        record = InstallationManifest(root, None, owner.name if owner else None, cache.path, tool="mamba")
        self.manifest.installations.append(record)
        self.fs.makedirs(str(self.fs.real(f"{root}/envs")))
        self.fs.own(root, owner)
        return Installation(record, cache, None)

    def mamba_trash(self, prefix, leftovers):
        """What mamba leaves in a prefix when it cannot delete a file in use (``core/util.cpp``
        ``remove_or_rename``): the file renamed to ``<name>.mamba_trash`` (a directory likewise)
        and listed, relative to the prefix, in ``conda-meta/mamba_trash.txt``.  ``leftovers``
        are prefix-relative names; one ending in ``/`` is a directory.  The list also keeps one
        entry already gone."""
        env = self.manifest.envs[str(prefix)]
        real = str(self.fs.real(prefix))
        listed = []
        for name in leftovers:
            trashed = name.rstrip("/") + ".mamba_trash"
            if name.endswith("/"):
                self.fs.write_real(f"{real}/{trashed}/payload.bin", self.rng.randbytes(3000), Ledger())
            else:
                self.fs.write_real(f"{real}/{trashed}", self.rng.randbytes(700), Ledger())
            listed.append(trashed)
            env.mamba_trash.append(trashed)
        listed.append("lib/gone-already.so.mamba_trash")
        self.fs.write_real(f"{real}/conda-meta/mamba_trash.txt", "".join(n + "\n" for n in listed).encode(), Ledger())
        env.mamba_trash.append("conda-meta/mamba_trash.txt")
        env.mamba_trash.sort()

    # -- environments --------------------------------------------------------------------------

    def env(self, prefix, packages, cache, link_type=HARDLINK, owner=None, name=None, known=True, requested=None, conda=CONDA_VERSION, installation=None):
        """An environment at ``prefix`` whose files come from ``cache`` by ``link_type``.

        Hard and soft links need the package extracted in ``cache``; a copied env may name
        packages whose extracted dir is gone (it no longer needs it), as after `conda clean -p`.
        """
        prefix = str(prefix)
        env = EnvManifest(prefix, name or os.path.basename(prefix), owner.name if owner else None, link_type, known)
        requested = set(requested if requested is not None else [p.name for p in packages[:2]])
        for pkg in packages:
            if link_type != COPY and pkg.dist not in cache.extracted:
                raise ValueError(f"{pkg.dist} is not extracted in {cache.path}: cannot link it")
        real_prefix = str(self.fs.real(prefix))
        ledger = Ledger()
        for pkg in packages:
            self._link_package(pkg, cache, real_prefix, link_type, pkg.name in requested, ledger)
            env.packages.append(pkg.dist)
            env.sources[pkg.dist] = cache.path
            cache.manifest.referenced_by.setdefault(pkg.dist, []).append(prefix)
        history = self._history(prefix, packages, sorted(requested), conda)
        self.fs.write_real(real_prefix + "/conda-meta/history", history, ledger)
        env.files = ledger.files + ledger.symlinks
        env.apparent_bytes = ledger.apparent
        self.manifest.envs[prefix] = env
        if installation is not None:
            installation.manifest.envs.append(prefix)
        self.fs.own(prefix, owner)
        return env

    def _link_package(self, pkg, cache, real_prefix, link_type, requested, ledger):
        """One package's files and its ``conda-meta/<dist>.json``."""
        source = cache.real(cache.place(pkg)) + "/"
        target = real_prefix + "/"
        for payload in pkg.files:
            if link_type == HARDLINK:
                self.fs.link_real(source + payload.path, target + payload.path, len(payload.data), ledger)
            elif link_type == SOFTLINK:
                self.fs.symlink_real(f"{cache.path}/{cache.place(pkg)}/{payload.path}", target + payload.path, ledger)
            else:
                self.fs.write_real(target + payload.path, payload.data, ledger, payload.mode)
        record = self._prefix_record(pkg, cache, link_type, requested)
        self.fs.write_real(f"{target}conda-meta/{pkg.dist}.json", dumps(record), ledger)

    @staticmethod
    def _prefix_record(pkg, cache, link_type, requested):
        """``conda-meta/<dist>.json``: the repodata record plus where and how it was linked."""
        extracted = f"{cache.path}/{cache.place(pkg)}"
        # conda keeps the source's path type for hard links and copies, "softlink" for symlinks
        paths = pkg.paths_json("softlink" if link_type == SOFTLINK else "hardlink")
        record = pkg.repodata_record()
        record.update(
            {
                "extracted_package_dir": extracted,
                "files": [entry["_path"] for entry in paths["paths"]],
                "link": {"source": extracted, "type": link_type},
                "package_tarball_full_path": f"{cache.path}/{cache.place(pkg, pkg.fn)}",
                "paths_data": paths,
                "requested_spec": pkg.name if requested else "None",
            }
        )
        return record

    def _history(self, prefix, packages, requested, conda_version):
        when = _stamp(self._tick())
        lines = [f"==> {when} <==", f"# cmd: conda create --prefix {prefix} {' '.join(requested)}", f"# conda version: {conda_version}"]
        lines += [f"+{_channel_name(p.channel)}/{p.subdir}::{p.dist}" for p in sorted(packages, key=lambda p: p.dist)]
        lines.append(f"# update specs: {requested!r}")
        return ("\n".join(lines) + "\n").encode()

    # -- users and configuration ---------------------------------------------------------------

    def user(self, user, environments=(), stale=(), expected_pkgs_dirs=None):
        """A user's home with ``~/.conda/environments.txt`` listing ``environments`` then the
        ``stale`` entries (prefixes that no longer exist)."""
        record = UserManifest(user.name, user.uid, user.gid, str(user.home), expected_pkgs_dirs=expected_pkgs_dirs)
        entries = list(environments) + list(stale)
        record.environments_txt = entries
        record.stale_entries = list(stale)
        self.fs.write(f"{user.home}/.conda/environments.txt", "".join(e + "\n" for e in entries).encode())
        self.fs.own(str(user.home), user)
        self.manifest.users[user.name] = record
        return record

    def user_cache(self, user, packages, path=None):
        """``~/.conda/pkgs`` (or ``path``) owned by ``user``: ``packages`` complete (for the
        user's envs) plus leftovers of other packages, one archive-only and one extracted-only."""
        cache = self.cache(path or f"{user.home}/.conda/pkgs", owner=user)
        names = {p.name for p in packages}
        others = [p for p in self.catalog_packages if p.name not in names]
        leftovers = self.rng.sample(others, k=min(2, len(others)))
        cache.add_many([(p, True, True) for p in packages] + [(p, i == 0, i == 1) for i, p in enumerate(leftovers)])
        cache.add_debris()
        self.manifest.users[user.name].pkgs_dirs.append(cache.path)
        return cache

    def pip_caches(self, user, uv=True):
        """The user's pip cache (built by ``condafab.pipcache``) and uv cache (a copy of one the
        real uv wrote, ``condafab.uvcache``) in their default places; their manifests are kept in
        ``manifest.pip_results``."""
        # pylint: disable=import-outside-toplevel
        from condafab.pipcache import build_pip_cache
        from condafab.uvcache import manifest, real_uv_cache

        record = self.manifest.users[user.name]
        seed = self.rng.getrandbits(32)
        record.pip_cache = f"{user.home}/.cache/pip"
        self.manifest.pip_results[record.pip_cache] = build_pip_cache(self.fs.real(record.pip_cache), seed)
        if uv:
            record.uv_cache = f"{user.home}/.cache/uv"
            cache = real_uv_cache(self.fs.real(record.uv_cache))
            self.manifest.pip_results[record.uv_cache] = manifest(cache)

    def condarc(self, path, text, owner=None, malformed=False):
        """A conda config file at in-host ``path``."""
        self.fs.write(path, text.encode())
        self.fs.own(path, owner)
        self.manifest.condarc[path] = text
        if malformed:
            self.manifest.malformed_condarc.append(path)

    def environment_file(self, variables):
        """``/etc/environment`` (pam_env syntax) with ``variables`` exported to every login."""
        self.manifest.environment.update(variables)
        text = "".join(f'{key}="{value}"\n' for key, value in sorted(self.manifest.environment.items()))
        self.fs.write("/etc/environment", text.encode())

    # -- the end ---------------------------------------------------------------------------------

    def finish(self):
        """Close the caches, derive each cache's answer key, apply ownership, measure disk use."""
        envs = self.manifest.envs
        for cache in self.caches.values():
            cache.close()
            self._answer_key(cache, envs)
            self.manifest.caches[cache.path] = cache.manifest
        self.fs.chown_all()
        for cache in self.caches.values():
            cache.manifest.disk_bytes = disk_usage(cache.real())
        self.manifest.seconds = time.perf_counter() - self._started
        return self.manifest

    @staticmethod
    def _answer_key(cache, envs):
        m = cache.manifest
        m.apparent_bytes = cache.ledger.apparent
        m.unique_bytes = cache.ledger.unique
        used = set(m.referenced_by)
        m.orphans = sorted(d for d in cache.extracted if d not in used)
        m.unused_tarballs = sorted(p.fn for d, p in cache.tarballs.items() if d not in used)
        hard = {d for d, prefixes in m.referenced_by.items() if any(envs[p].link_type == HARDLINK for p in prefixes)}
        m.multiply_linked = sorted(d for d, p in cache.extracted.items() if p.internal_hardlinks or (d in hard and p.files))
        m.softlink_only = sorted(d for d, prefixes in m.referenced_by.items() if all(envs[p].link_type == SOFTLINK for p in prefixes))
        for name in ("tarballs", "extracted", "metadata_only", "internal_hardlink", "partial", "locks", "tempfiles", "trash", "logs", "index_cache"):
            setattr(m, name, sorted(getattr(m, name)))
        m.tarball_only = sorted(d for d in cache.tarballs if d not in cache.extracted)
        m.extracted_only = sorted(d for d in cache.extracted if d not in cache.tarballs)
        m.referenced_by = {d: sorted(p) for d, p in sorted(m.referenced_by.items())}


def disk_usage(top):
    """Allocated bytes under ``top``, every inode once, directories included (``du -s`` semantics).

    A measurement, not a prediction: block allocation belongs to the filesystem.
    """
    seen = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [""] + dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name)) if name else os.lstat(dirpath)
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
    return total
