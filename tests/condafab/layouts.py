"""Small, named host layouts for the test fleet: ``LAYOUTS[name](fsroot, seed, users) -> Manifest``.

Each writes tens of packages (well under a second) and covers one situation the modules must get
right.  ``users`` are the host's logins; the first user is the one with the odd setup where a
layout needs one.  ``malformed=True`` adds a broken ``~/.condarc`` for the last user.
"""

from condafab import User
from condafab.host import HostBuilder
from condafab.manifest import COPY, HARDLINK, SOFTLINK

PACKAGES = 24  # catalog size per host: enough for every special case plus some ordinary ones
FILES = 6  # payload files per package
ROOT_USER = User("root", 0, 0, "/root")
DEFAULT_USERS = (User("alice", 1001, 1001, "/home/alice"), User("bob", 1002, 1002, "/home/bob"))


def _host(fsroot, seed, layout):
    host = HostBuilder(fsroot, seed, layout)
    return host, host.catalog(PACKAGES, FILES)


def _shared_install(host, catalog, root="/opt/conda", pkgs_dir=None, conda_version=None):
    """A root-owned installation with its cache filled from the catalog and the usual debris."""
    inst = host.install(root, catalog, conda_version=conda_version, pkgs_dir=pkgs_dir)
    inst.cache.add_mix([p for p in catalog.packages if p.dist not in inst.cache.packages], keep=[catalog.git, catalog.numpy[0]])
    inst.cache.add_debris()
    return inst


def _env(host, catalog, inst, name, share, link_type=HARDLINK, always=(), owner=None, prefix=None, known=True):
    """An env of ``inst`` with about ``share`` of its cache (python always), at ``envs/<name>``."""
    cache = inst.cache
    among = list(cache.packages.values()) if link_type == COPY else cache.extracted_packages
    chosen = catalog.pick(host.rng, share, among=among, always=[catalog.python, *always])
    prefix = prefix or f"{inst.root}/envs/{name}"
    return host.env(prefix, chosen, cache, link_type=link_type, owner=owner, known=known, installation=inst, conda=inst.manifest.conda_version)


def _finish(host, users, malformed):
    """Close the build; when asked, first break the last user's (or root's) ``~/.condarc``."""
    if malformed:
        user = users[-1] if users else ROOT_USER
        host.condarc(f"{user.home}/.condarc", "pkgs_dirs: [unclosed\n  - : :\n", owner=user, malformed=True)
    return host.finish()


def _halves(packages, python):
    """Split a cache's packages between two envs, python in both."""
    rest = [p for p in packages if p.name != "python"]
    return [python] + rest[::2], [python] + rest[1::2]


def single_root(fsroot, seed, users, malformed=False, urls_txt=True):
    """One root-owned ``/opt/conda``: hard-linked, copied envs; orphans; root's own registry.
    ``urls_txt=False``: its cache has no ``urls.txt`` (read-only to conda, which then reads
    packages from it but neither writes nor cleans it)."""
    host, catalog = _host(fsroot, seed, "single_root")
    if not urls_txt:
        host.cache("/opt/conda/pkgs", writable=False)
    inst = _shared_install(host, catalog, pkgs_dir=None if urls_txt else "/opt/conda/pkgs")
    envs = [
        _env(host, catalog, inst, "web", 0.3),
        _env(host, catalog, inst, "ml", 0.3, always=[catalog.numpy[0]]),
        _env(host, catalog, inst, "tools", 0.3, link_type=COPY),
    ]
    host.condarc("/opt/conda/.condarc", "channels:\n  - conda-forge\nauto_activate_base: false\n")
    host.user(ROOT_USER, environments=["/opt/conda"] + [e.prefix for e in envs], stale=["/opt/conda/envs/removed-last-year"])
    host.pip_caches(ROOT_USER)
    for user in users:
        host.user(user, environments=["/opt/conda", envs[0].prefix])
    return _finish(host, users, malformed)


def multi_user(fsroot, seed, users, malformed=False):
    """Shared ``/opt/conda`` plus users with their own caches, envs (one in a nonstandard place),
    stale registry entries and config at every level, ``pkgs_dirs`` locked by ``#!final``."""
    users = list(users or DEFAULT_USERS)
    host, catalog = _host(fsroot, seed, "multi_user")
    inst = _shared_install(host, catalog)
    shared = _env(host, catalog, inst, "shared", 0.3)
    # An env conda cannot find (no envs dir, no environments.txt): only its hard links protect it.
    _env(host, catalog, inst, "hidden", 0.2, prefix="/srv/scratch/old-env", known=False)
    host.condarc("/etc/conda/.condarc", "channels:\n  - conda-forge\nchannel_priority: strict\n")
    host.condarc("/etc/conda/condarc.d/50-caches.yml", "pkgs_dirs:  #!final\n  - /opt/conda/pkgs\n  - ~/.conda/pkgs\n")
    host.condarc("/opt/conda/.condarc", "pkgs_dirs:\n  - /opt/conda/pkgs-ignored-by-final\nalways_yes: true\n")
    for index, user in enumerate(users):
        expected = ["/opt/conda/pkgs", f"{user.home}/.conda/pkgs"]
        nonstandard = f"{user.home}/projects/app{index}/.env" if index % 2 == 0 else f"/srv/{user.name}/env"
        own = f"{user.home}/.conda/envs/daily"
        host.user(user, environments=["/opt/conda", shared.prefix, own, nonstandard], stale=[f"{user.home}/.conda/envs/deleted"], expected_pkgs_dirs=expected)
        mine = catalog.pick(host.rng, 0.3, always=[catalog.python])
        cache = host.user_cache(user, mine)
        first, second = _halves(mine, catalog.python)
        host.env(own, first, cache, owner=user)
        host.env(nonstandard, second, cache, owner=user, link_type=HARDLINK if index % 2 == 0 else COPY)
        _user_condarc(host, user, index)
        host.pip_caches(user, uv=index == 0)
    return _finish(host, users, malformed)


def _user_condarc(host, user, index):
    """Per-user config in each place conda reads; the ``pkgs_dirs`` here lose to ``#!final``."""
    places = (
        (f"{user.home}/.condarc", f"pkgs_dirs:\n  - {user.home}/scratch/pkgs\nenvs_dirs:\n  - {user.home}/envs\n"),
        (f"{user.home}/.config/conda/condarc", "channels:\n  - defaults\nshow_channel_urls: true\n"),
        (f"{user.home}/.conda/condarc.d/10-user.yml", f"pkgs_dirs:\n  - /tmp/{user.name}-pkgs\n"),
    )
    path, text = places[index % len(places)]
    host.condarc(path, text, owner=user)


def two_installs(fsroot, seed, users, malformed=False):
    """Root-owned ``/opt/miniconda3`` (older conda) and the first user's ``~/miniforge3``."""
    users = list(users or DEFAULT_USERS)
    owner = users[0]
    host, catalog = _host(fsroot, seed, "two_installs")
    system = _shared_install(host, catalog, root="/opt/miniconda3", conda_version="23.11.0")
    sys_env = _env(host, catalog, system, "py311", 0.3)
    personal = host.install(f"{owner.home}/miniforge3", catalog, owner=owner)
    personal.cache.add_mix(catalog.pick(host.rng, 0.4, always=[catalog.numpy[1]]))
    personal.cache.add_debris()
    dev = _env(host, catalog, personal, "dev", 0.4, owner=owner)
    host.user(owner, environments=["/opt/miniconda3", sys_env.prefix, personal.root, dev.prefix], stale=["/opt/anaconda3"])
    for user in users[1:]:
        host.user(user, environments=["/opt/miniconda3", sys_env.prefix])
    return _finish(host, users, malformed)


def relocated_pkgs(fsroot, seed, users, malformed=False):
    """``pkgs_dirs`` moved to ``/data/conda-pkgs`` by ``.condarc`` and ``CONDA_PKGS_DIRS``."""
    host, catalog = _host(fsroot, seed, "relocated_pkgs")
    inst = _shared_install(host, catalog, pkgs_dir="/data/conda-pkgs")
    envs = [_env(host, catalog, inst, "api", 0.3), _env(host, catalog, inst, "batch", 0.3)]
    host.condarc("/opt/conda/.condarc", "pkgs_dirs:\n  - /data/conda-pkgs\n")
    host.environment_file({"CONDA_PKGS_DIRS": "/data/conda-pkgs"})
    for user in [ROOT_USER, *users]:
        host.user(user, environments=["/opt/conda"] + [e.prefix for e in envs], expected_pkgs_dirs=["/data/conda-pkgs"])
    return _finish(host, users, malformed)


def softlinked_env(fsroot, seed, users, malformed=False):
    """An env linked by symlinks into the cache next to a hard-linked one: the packages only the
    soft-linked env uses look unused to `conda clean -p` (conda#16614) but are in use."""
    host, catalog = _host(fsroot, seed, "softlinked_env")
    inst = _shared_install(host, catalog)
    hard = _env(host, catalog, inst, "hard", 0.3)
    in_hard = set(hard.packages)
    only_soft = [p for p in inst.cache.extracted_packages if p.dist not in in_hard and p.files and not p.internal_hardlinks]
    _env(host, catalog, inst, "linked", 0.3, link_type=SOFTLINK, always=only_soft[:3])
    for user in [ROOT_USER, *users]:
        host.user(user, environments=["/opt/conda", hard.prefix, f"{inst.root}/envs/linked"])
    return _finish(host, users, malformed)


def micromamba(fsroot, seed, users, malformed=False):
    """micromamba without conda: the first user's root in the mamba 2 user data dir
    (``~/.local/share/mamba``) with mamba >= 2.6's channel-folder cache, hard- and soft-linked
    envs and mamba's trash in one; the second user's mamba 1 root ``~/micromamba`` (flat cache)
    plus leftovers in ``~/.mamba/pkgs`` (channel folders); a root-owned ``/srv/mamba`` that only
    ``MAMBA_ROOT_PREFIX`` (in ``/etc/environment``) names."""
    users = list(users or DEFAULT_USERS)
    host, catalog = _host(fsroot, seed, "micromamba")
    first, second = users[0], users[1]
    data = host.micromamba(f"{first.home}/.local/share/mamba", owner=first)
    data.cache.add_mix(catalog.packages, keep=[catalog.python])
    data.cache.add_debris()
    hard = _env(host, catalog, data, "ml", 0.3, owner=first)
    in_hard = set(hard.packages)
    only_soft = [p for p in data.cache.extracted_packages if p.dist not in in_hard and p.files and not p.internal_hardlinks]
    soft = _env(host, catalog, data, "tools", 0.2, link_type=SOFTLINK, always=only_soft[:2], owner=first)
    host.mamba_trash(hard.prefix, ["lib/libold.so", "share/olddocs/"])
    host.user(first, environments=[hard.prefix, soft.prefix])
    old = host.micromamba(f"{second.home}/micromamba", owner=second, folders=False)
    old.cache.add_mix(catalog.pick(host.rng, 0.4, always=[catalog.python]), keep=[catalog.python])
    old.cache.add_debris()
    dev = _env(host, catalog, old, "dev", 0.5, owner=second)
    leftovers = host.cache(f"{second.home}/.mamba/pkgs", owner=second, folders=True)
    leftovers.add_mix(catalog.pick(host.rng, 0.3))
    leftovers.add_debris()
    host.user(second, environments=[dev.prefix])
    service = host.micromamba("/srv/mamba")
    service.cache.add_mix(catalog.pick(host.rng, 0.4, always=[catalog.python]), keep=[catalog.python])
    service.cache.add_debris()
    svc = _env(host, catalog, service, "svc", 0.3)
    host.environment_file({"MAMBA_ROOT_PREFIX": "/srv/mamba"})
    host.user(ROOT_USER, environments=[svc.prefix])
    return _finish(host, users, malformed)


LAYOUTS = {
    "single_root": single_root,
    "multi_user": multi_user,
    "two_installs": two_installs,
    "relocated_pkgs": relocated_pkgs,
    "softlinked_env": softlinked_env,
    "micromamba": micromamba,
}
