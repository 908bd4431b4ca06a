# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ansible_facts.conda_cache``: the domain model of one host rendered as plain data."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.pkgcache.fleet.plugins.module_utils._diskusage import DiskUsage, filesystem, walk
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import RECLAIMABLE_CATEGORIES, owner_name


def gather(users, roots=(), env=None, env_sizes=False, list_packages=True):
    """Build the facts for this host; problems become warnings, never exceptions."""
    host = Host.load(users, roots, env, sized=True)
    verdicts = host.verdicts()
    whole, reclaim = DiskUsage(), DiskUsage()
    caches = [_cache_facts(host, cache, verdicts, list_packages, whole, reclaim) for cache in host.caches]
    environments = [_environment_facts(host, env_, env_sizes) for env_ in host.environments]
    totals = {
        "installations": len(host.installations),
        "caches": sum(1 for c in caches if c["exists"]),
        "environments": len(environments),
        "apparent_bytes": whole.apparent,
        "disk_bytes": whole.on_disk,
        "reclaimable_bytes": reclaim.reclaimable,
        "tarballs": sum(len(c.tarballs) for c in host.caches),
        "extracted": sum(len(c.extracted) for c in host.caches),
        "unused_packages": sum(len(c.unused) for c in host.caches),
    }
    return {
        "installations": [_installation_facts(inst) for inst in host.installations],
        "caches": caches,
        "environments": environments,
        "totals": totals,
        "warnings": list(host.warnings),
    }


def _installation_facts(inst):
    return {
        "root": inst.root,
        "tool": inst.tool,
        "conda_version": inst.conda_version,
        "owner": owner_name(os.stat(inst.root).st_uid),
        "configs": dict((user, config.as_dict()) for user, config in sorted(inst.configs.items())),
    }


def _cache_facts(host, cache, verdicts, list_packages, host_whole, host_reclaim):
    """One cache's facts; its usage also folds into the host-wide totals (inodes once per host)."""
    cache.set_unused(verdicts)
    facts = {
        "path": cache.path,
        "tool": host.tool(cache),
        "exists": cache.exists,
        "symlink_to": os.path.realpath(cache.path) if os.path.islink(cache.path) else None,
        "used_by": host.cache_users.get(cache.path, []),
    }
    if not cache.exists:
        return facts
    total = cache.total()
    reclaim = DiskUsage()
    for name in RECLAIMABLE_CATEGORIES:
        reclaim.update(cache.usage(name))
    host_whole.update(total)
    host_reclaim.update(reclaim)
    mine = [verdicts[p.path] for p in cache.extracted]
    facts.update({
        "writable": cache.conda_writable,
        "fs_writable": os.access(cache.path, os.W_OK),
        "owner": owner_name(cache.root_stat.st_uid),
        "filesystem": filesystem(cache.path),
        "categories": cache.category_facts(),
        "apparent_bytes": total.apparent,
        "disk_bytes": total.on_disk,
        "reclaimable_bytes": reclaim.reclaimable,
    })
    if list_packages:
        facts["unused_packages"] = [v.as_dict() for v in mine if v.unused]
        facts["kept_but_conda_clean_would_remove"] = [
            v.as_dict() for v in mine if not v.unused and v.conda_clean_would_remove and v.referenced_by]
    return facts


def _environment_facts(host, env, env_sizes):
    roots = [i.root for i in host.installations if env.prefix == i.root
             or os.path.dirname(env.prefix) == os.path.join(i.root, "envs")]
    facts = {
        "path": env.prefix,
        "owner": env.owner,
        "root": roots[0] if roots else None,
        "package_count": len(env.records),
        "link_types": env.link_types(),
    }
    if env_sizes:
        facts["size"] = walk(env.prefix, on_error=host.warnings.path_error).as_dict()
    return facts
