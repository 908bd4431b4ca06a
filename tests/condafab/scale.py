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


def build(fsroot, seed, packages=2000, files=100, envs=10, users=(), share=0.15, pip=False):
    host = HostBuilder(fsroot, seed, layout="scale")
    catalog = host.catalog(packages, files)
    inst = host.install(ROOT, catalog)
    cache = inst.cache
    cache.add_mix([p for p in catalog.packages if p.dist not in cache.packages], keep=[catalog.git])
    cache.add_debris()
    linkable = cache.extracted_packages
    copyable = [p for p in catalog.packages if p.dist in cache.packages]
    prefixes = []
    for index in range(envs):
        link_type = link_type_for(index, envs)
        among = copyable if link_type == COPY else linkable
        chosen = catalog.pick(host.rng, share, among=among, always=[catalog.python])
        prefix = f"{ROOT}/envs/env{index:02d}"
        host.env(prefix, chosen, cache, link_type=link_type, installation=inst)
        prefixes.append(prefix)
    for user in users:
        own_cache_pkgs = catalog.pick(host.rng, min(1.0, 20 / max(1, len(catalog.packages))), always=[catalog.python])
        own_prefix = f"{user.home}/.conda/envs/work"
        host.user(user, environments=[ROOT] + prefixes + [own_prefix])
        user_cache = host.user_cache(user, own_cache_pkgs)
        host.env(own_prefix, user_cache.extracted_packages, user_cache, owner=user)
        if pip:
            host.pip_caches(user)
    return host.finish()
