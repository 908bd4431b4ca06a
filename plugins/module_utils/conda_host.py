# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host as conda sees it: its installations, the configuration each user sees, the environments
and caches those name, who named each cache, and the verdicts on extracted packages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_config
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import ANYONE, ROOT, namer_of
from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import Walks
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_cache import PackageCache
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import (
    CACHE_MARKERS, Environment, References, Warnings, discover_installations, find_unused, is_prefix,
    read_environments_txt, dedupe_real)


class Host(object):
    """Everything conda-related on one host: installations, their configs, caches, environments."""

    def __init__(self, users, explicit_roots=(), env=None, tarballs_only=False):
        self.warnings = Warnings()
        self.users = users
        self.env = dict(env or {})
        self.tarballs_only = tarballs_only
        self.installations = discover_installations(users, explicit_roots, self.env, self.warnings)
        self.environments = []
        self.caches = []
        self.cache_users = {}  # cache path -> sorted "root:user" labels
        self.cache_routes = {}  # real cache path -> [(path as configured, uid that named it)]
        self.cache_tools = {}  # real cache path -> tools of the installations that name it

    def resolve_configs(self):
        """Effective pkgs_dirs/envs_dirs per installation for root and each user with conda state."""
        users = self._config_users()
        homes = self.homes()
        for inst in self.installations:
            for user in users:
                env = dict(self.env)
                env.setdefault("HOME", user.home)
                files = conda_config.search_path(inst.root, user.home, env, inst.tool)
                config = conda_config.resolve(inst.root, user.home, env, inst.writable_by(user), files=files,
                                              tool=inst.tool)
                # Only a problem needs to know whose files these are (each costs a walk of its path).
                own = [f for f in files if user.uid != ROOT and namer_of(f, homes) == user.uid] \
                    if config.warnings else []
                for warning in config.warnings:
                    if own and any(f in warning for f in own) and not any(
                            f in warning for f in files if f not in own):
                        self.warnings.own_config(warning, user.name)
                    elif warning not in self.warnings:
                        self.warnings.append(warning)
                inst.configs[user.name] = config
        return self

    def _config_users(self):
        """Root always; others when they have conda config, envs or caches in their home."""
        chosen = []
        for user in self.users:
            if user.uid == 0 or _has_conda_state(user.home):
                chosen.append(user)
        return chosen

    def load_environments(self):
        prefixes = []
        for inst in self.installations:
            prefixes.append(inst.root)
            for config in inst.configs.values():
                for envs_dir in config.envs_dirs:
                    prefixes.extend(_list_prefixes(envs_dir))
        for user in self.users:
            prefixes.extend(read_environments_txt(user, self.warnings))
        for prefix in dedupe_real(prefixes):
            if not is_prefix(prefix):
                continue
            env = Environment.load(prefix, self.warnings, records=not self.tarballs_only)
            if env is not None:
                self.environments.append(env)
        return self

    def load_caches(self):
        """Scan every pkgs_dir any installation's config names, and remember who named it."""
        paths, labels = [], {}
        homes = self.homes()
        users = dict((user.name, user) for user in self.users)
        for inst in self.installations:
            for user_name, config in sorted(inst.configs.items()):
                for path in config.pkgs_dirs:
                    paths.append(path)
                    real = os.path.realpath(path)
                    labels.setdefault(real, set()).add("%s:%s" % (inst.root, user_name))
                    self.cache_tools.setdefault(real, set()).add(inst.tool)
                    routes = self.cache_routes.setdefault(real, [])
                    for route in config_routes(config, path, inst, users.get(user_name), homes):
                        if route not in routes:
                            routes.append(route)
        for path in dedupe_real(paths):
            self.cache_users[path] = sorted(labels.get(os.path.realpath(path), ()))
            self.caches.append(self._scan(PackageCache(path)))
        return self

    def routes(self, cache):
        """``[(path, namer uid)]``: how the configurations name a cache (see ``cleanup.authorize``)."""
        return list(self.cache_routes.get(os.path.realpath(cache.path), ()))

    def tool(self, cache):
        """``mamba`` for a cache only micromamba installations name, else ``conda`` (conda's rules
        are the stricter ones where both read it)."""
        tools = self.cache_tools.get(os.path.realpath(cache.path)) or set(["conda"])
        return "mamba" if tools == set(["mamba"]) else "conda"

    def homes(self):
        return [(user.uid, user.home) for user in self.users]

    def _scan(self, cache):
        return cache.scan_tarballs(self.warnings) if self.tarballs_only else cache.scan(self.warnings)

    def select_caches(self, roots=(), pkgs_dirs=()):
        """The caches a cleanup may touch: the named ones, those of the named roots, or all.

        A named directory must be a cache some configuration lists, or look like one (``urls.txt``
        or ``urls``); anything else is refused.
        """
        known = dict((os.path.realpath(c.path), c) for c in self.caches)
        if pkgs_dirs:
            chosen = []
            for path in pkgs_dirs:
                real = os.path.realpath(path)
                cache = known.get(real)
                if cache is None:
                    if not any(os.path.isfile(os.path.join(real, n)) for n in CACHE_MARKERS):
                        raise ValueError("%s is not a conda package cache (not configured for any "
                                         "installation, no urls.txt)" % path)
                    # Known from now on: the verdicts on extracted packages cover its packages too.
                    cache = self._scan(PackageCache(path))
                    self.caches.append(cache)
                    known[real] = cache
                # Named by the operator: root's word, still subject to who controls the path.
                routes = self.cache_routes.setdefault(real, [])
                if (path, ROOT) not in routes:
                    routes.append((path, ROOT))
                chosen.append(cache)
            return chosen
        if roots:
            wanted = set(os.path.normpath(r) for r in roots)
            return [c for c in self.caches if c.exists and any(
                label.rsplit(":", 1)[0] in wanted for label in self.cache_users.get(c.path, ()))]
        return [c for c in self.caches if c.exists]

    def _start_sizing(self):
        """Start walking every cache item not sized yet (see :class:`Walks`); ``(items, walks)``."""
        pending = [item for cache in self.caches for items in list(cache.entries.values()) + [cache.other]
                   for item in items if not item.sized]
        return pending, Walks([item.path for item in pending], on_error=self.warnings.path_error)

    def verdicts(self):
        if self.tarballs_only:
            raise ValueError("verdicts need a full load (Host.load without tarballs_only)")
        references = References(self.environments)
        packages = [p for cache in self.caches for p in cache.extracted]
        return find_unused(packages, references)

    @classmethod
    def load(cls, users, explicit_roots=(), env=None, tarballs_only=False, sized=False):
        """Everything, or with ``tarballs_only`` what a backup needs: the same installations,
        configs, environments (prefixes only, records not read) and caches (top-level files
        only, see :meth:`PackageCache.scan_tarballs`).  Cache items are sized on first use
        unless ``sized`` (facts, which report them all) sizes them all at once, in parallel."""
        host = cls(users, explicit_roots, env, tarballs_only).resolve_configs().load_caches()
        if not sized:
            return host.load_environments()
        # Facts report every item: the helpers walk the caches while this process reads records.
        pending, walks = host._start_sizing()
        try:
            host.load_environments()
        finally:
            usages = walks.result()  # never leaves a helper behind
        for item, usage in zip(pending, usages):
            item.usage = usage
        return host


def config_routes(config, path, inst, user, homes):
    """``[(path, namer uid)]``: how one user's resolved ``config`` names the pkgs_dir ``path``."""
    return [(path, _origin_namer(origin, inst, user, homes)) for origin in config.origins.get(path, ())]


def _origin_namer(origin, inst, user, homes):
    """The uid behind one origin of a pkgs_dir: a file's writer, the installation's owner for
    its default cache, the user for ``~/.conda/pkgs``; the module's ``environment`` is the
    operator's word (root's), though what it names is still checked for who controls the path."""
    if origin in (conda_config.DEFAULT_HOME, conda_config.DEFAULT_MAMBA_HOME):
        return user.uid if user is not None else ANYONE
    if origin == conda_config.DEFAULT_ROOT:
        return namer_of(inst.root, homes)
    if origin.startswith("$"):
        return ROOT
    return namer_of(origin, homes)


def _has_conda_state(home):
    return any(os.path.exists(os.path.join(home, p)) for p in (
        ".conda", ".condarc", ".config/conda", ".mamba", ".mambarc", ".config/mamba", "micromamba",
        ".local/share/mamba"))


def _list_prefixes(envs_dir):
    try:
        names = sorted(os.listdir(envs_dir))
    except OSError:
        return []
    return [os.path.join(envs_dir, n) for n in names]


def refuse_unknown_state(host):
    """Nothing is changed in caches when reading the host met problems: what is unknown might be in use."""
    if host.warnings.blocking():
        raise ValueError("refusing to change caches, the host's conda state is not fully known: %s"
                         % "; ".join(host.warnings.blocking()))


def why_environments_unknown(host):
    """Why environments may be unknown, or None: a user's own conda config that cannot be read
    hides the ``envs_dirs`` it names, whose environments may soft-link into any cache.  What stays
    safe is cleaned (tarballs, index cache, logs, trash, stale partial downloads and locks: no
    environment links to them, and a hard link keeps a tarball); extracted packages are kept."""
    users = host.warnings.degraded_users()
    if not users:
        return None
    return "the conda config of %s cannot be read (see warnings); environments it names are unknown, so no " \
        "extracted package is removed" % ", ".join(users)
