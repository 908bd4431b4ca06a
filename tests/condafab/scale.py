"""The scalable fixture: one big installation for unit tests and benchmarks.

``build(fsroot, seed, packages=2000, files=100, envs=10)`` writes ``/opt/conda`` with every
package in its cache in a mix of states (both / archive only / extracted only), the debris, and
``envs`` environments each linking about ``share`` of the extracted packages: the first one by
symlinks, the second by copy, the rest by hard links.  With ``users``, each user gets
``environments.txt``, a small ``~/.conda/pkgs`` and one env of their own.
"""

from condafab.host import HostBuilder
from condafab.manifest import COPY, HARDLINK, SOFTLINK

ROOT = "/opt/conda"


def link_type_for(index, count):
    """First env soft-linked, second copied, the rest hard-linked (all hard when fewer than 3)."""
    if count < 3:
        return HARDLINK
    return {0: SOFTLINK, 1: COPY}.get(index, HARDLINK)


def _give_softlinked_env_its_own_package(link_types, chosen, linkable):
    """Make sure some package is used by the soft-linked env alone (the conda#16614 case)."""
    if SOFTLINK not in link_types:
        return
    soft = link_types.index(SOFTLINK)
    others = {p.dist for i, packages in enumerate(chosen) if i != soft for p in packages}
    names = {p.name for p in chosen[soft]}
    if any(p.dist not in others and p.files for p in chosen[soft]):
        return
    spare = [p for p in linkable if p.dist not in others and p.name not in names and p.files]
    if spare:
        chosen[soft] = sorted(chosen[soft] + spare[:1], key=lambda p: p.dist)


def build(fsroot, seed, packages=2000, files=100, envs=10, users=(), share=0.1, pip=False):
    host = HostBuilder(fsroot, seed, layout="scale")
    catalog = host.catalog(packages, files)
    inst = host.install(ROOT, catalog)
    cache = inst.cache
    cache.add_mix([p for p in catalog.packages if p.dist not in cache.packages], keep=[catalog.git])
    cache.add_debris()
    linkable = cache.extracted_packages
    copyable = [p for p in catalog.packages if p.dist in cache.packages]
    link_types = [link_type_for(index, envs) for index in range(envs)]
    chosen = [catalog.pick(host.rng, share, among=copyable if t == COPY else linkable, always=[catalog.python]) for t in link_types]
    _give_softlinked_env_its_own_package(link_types, chosen, linkable)
    prefixes = [f"{ROOT}/envs/env{index:02d}" for index in range(envs)]
    for prefix, link_type, packages in zip(prefixes, link_types, chosen):
        host.env(prefix, packages, cache, link_type=link_type, installation=inst)
    for user in users:
        own_cache_pkgs = catalog.pick(host.rng, min(1.0, 20 / max(1, len(catalog.packages))), always=[catalog.python])
        own_prefix = f"{user.home}/.conda/envs/daily"
        host.user(user, environments=[ROOT] + prefixes + [own_prefix])
        user_cache = host.user_cache(user, own_cache_pkgs)
        host.env(own_prefix, own_cache_pkgs, user_cache, owner=user)
        if pip:
            host.pip_caches(user)
    return host.finish()
