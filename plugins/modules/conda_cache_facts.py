#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: conda_cache_facts
short_description: Gather facts about every conda installation, package cache and environment
version_added: 0.1.0
description:
  - Discovers every conda installation on the host without running conda, from standard
    locations, each user's home, every user's C(~/.conda/environments.txt) and O(roots).
  - Discovers micromamba root prefixes too (C(tool=mamba)) where micromamba looks for them -
    C(MAMBA_ROOT_PREFIX) from O(environment), each user's C(~/micromamba) and user data dir
    C(~/.local/share/mamba) (C($XDG_DATA_HOME/mamba)) - and resolves their caches as micromamba
    does (C(.mambarc) files next to C(.condarc) ones; by default the root's C(pkgs) then
    C(~/.mamba/pkgs)).
  - Resolves the effective C(pkgs_dirs) and C(envs_dirs) per installation and user exactly as conda
    does (config search path, list merge, C(#!final), C(CONDA_PKGS_DIRS)).
  - Reads conda's flat cache layout and mamba 2.6's channel folders
    (C(pkgs/https/<host>/<channel>/<subdir>/<package>)); an item there is listed with its folders.
  - Sizes every package cache by category with apparent bytes, on-disk bytes (each inode once) and
    reclaimable bytes (what C(df) would gain if that category were removed now).
  - An extracted package is unused when no known environment's PrefixRecord names it (any link type,
    any user, any envs_dir) and none of its files has a hard link outside the set being removed.
  - Read-only; problems with single files become warnings and the rest is still returned.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.attributes.facts
  - pkgcache.fleet.users.conda
  - pkgcache.fleet.environment.conda
  - pkgcache.fleet.conda_facts
  - pkgcache.fleet.conda_facts.roots
  - pkgcache.fleet.printable
seealso:
  - module: pkgcache.fleet.pip_cache_facts
  - module: pkgcache.fleet.cache_facts
    description: Conda and pip cache facts in one call.
"""

EXAMPLES = r"""
- name: Gather conda cache facts
  pkgcache.fleet.conda_cache_facts:

- name: Show what cleaning would reclaim on this host
  ansible.builtin.debug:
    msg: "{{ ansible_facts.conda_cache.totals.reclaimable_bytes | ansible.builtin.human_readable }}"

- name: Include a root outside the standard places and the fleet-wide CONDA_PKGS_DIRS
  pkgcache.fleet.conda_cache_facts:
    roots:
      - /srv/tools/conda
    environment:
      CONDA_PKGS_DIRS: /scratch/conda-pkgs
    env_sizes: true
"""

RETURN = r"""
ansible_facts:
  description: Facts added under C(conda_cache).
  returned: always
  type: dict
  contains:
    conda_cache:
      description: Installations, caches, environments and totals of this host.
      returned: always
      type: dict
      contains:
        installations:
          description: Every conda and micromamba root prefix found.
          type: list
          elements: dict
          returned: always
          contains:
            root:
              description: Root prefix.
              type: str
              returned: always
            tool:
              description: C(conda), or C(mamba) for a micromamba root prefix (no conda in it).
              type: str
              returned: always
            conda_version:
              description: Version from the root's C(conda-meta) record of conda, if any.
              type: str
              returned: always
            owner:
              description: Owner of the root prefix.
              type: str
              returned: always
            configs:
              description: >-
                Per user name, the effective C(pkgs_dirs), C(envs_dirs) and the config C(sources) that
                contributed (files, or C($CONDA_PKGS_DIRS) and similar for variables).
              type: dict
              returned: always
        caches:
          description: Every package cache (C(pkgs_dirs) entry) of every installation and user.
          type: list
          elements: dict
          returned: always
          contains:
            path:
              description: The cache directory as configured.
              type: str
              returned: always
            tool:
              description: C(mamba) when only micromamba installations name the cache, else C(conda).
              type: str
              returned: always
            exists:
              description: Whether the directory exists.
              type: bool
              returned: always
            symlink_to:
              description: Where the configured path leads when it is a symlink, else null.
              type: str
              returned: always
            used_by:
              description: C(root:user) pairs whose configuration lists this cache.
              type: list
              elements: str
              returned: always
            writable:
              description: Writable in conda's sense (C(urls.txt) exists and is writable).
              type: bool
              returned: when exists
            fs_writable:
              description: Whether the directory is writable for the module's user.
              type: bool
              returned: when exists
            owner:
              description: Owner of the cache directory.
              type: str
              returned: when exists
            filesystem:
              description: C(mount), C(total_bytes), C(free_bytes), C(available_bytes) of its filesystem.
              type: dict
              returned: when exists
            categories:
              description: >-
                Per category (C(tarballs), C(extracted), C(unused), C(index_cache), C(logs), C(trash),
                C(partial), C(locks)): C(count) items (packages, tarballs or files), C(entries)
                (filesystem entries), C(files), C(apparent_bytes), C(disk_bytes) (each inode once) and
                C(reclaimable_bytes).
              type: dict
              returned: when exists
            apparent_bytes:
              description: Sum of file sizes in the cache.
              type: int
              returned: when exists
            disk_bytes:
              description: Blocks allocated to the cache, each inode once.
              type: int
              returned: when exists
            reclaimable_bytes:
              description: What removing every reclaimable category (not in-use packages) would free.
              type: int
              returned: when exists
            unused_packages:
              description: Unused extracted packages with C(path), C(dist), C(reason) and sizes.
              type: list
              elements: dict
              returned: when exists and O(list_packages=true)
            kept_but_conda_clean_would_remove:
              description: >-
                In-use packages (soft-linked, copied or metadata-only) that C(conda clean --packages)
                would delete, with the environments that reference them.
              type: list
              elements: dict
              returned: when exists and O(list_packages=true)
        environments:
          description: Every known environment.
          type: list
          elements: dict
          returned: always
          contains:
            path:
              description: Prefix.
              type: str
              returned: always
            owner:
              description: Owner of the prefix.
              type: str
              returned: always
            root:
              description: The installation it belongs to, if it is a root or under its C(envs).
              type: str
              returned: always
            package_count:
              description: Number of PrefixRecords.
              type: int
              returned: always
            link_types:
              description: Number of records per link type (hardlink, softlink, copy, directory, unknown).
              type: dict
              returned: always
            size:
              description: Apparent, on-disk and reclaimable bytes of the prefix.
              type: dict
              returned: when O(env_sizes=true)
        totals:
          description: >-
            Host totals for fleet aggregation: C(installations), C(caches), C(environments),
            C(apparent_bytes), C(disk_bytes), C(reclaimable_bytes) (inodes counted once across caches),
            C(tarballs), C(extracted), C(unused_packages).
          type: dict
          returned: always
        warnings:
          description: Problems met (unreadable or malformed files), each naming its path.
          type: list
          elements: str
          returned: always
        complete:
          description:
            - Whether every home, config and cache asked for could be read.
            - False without root (no become) when other users are asked for, or when problems were met.
          type: bool
          returned: always
        incomplete_reasons:
          description: Why the facts are not complete (empty when they are).
          type: list
          elements: str
          returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils import options
from ansible_collections.pkgcache.fleet.plugins.module_utils.facts import CONDA, exit_module


def main():
    module = AnsibleModule(
        argument_spec=options.argument_spec(options.USERS, options.ENVIRONMENT, options.CONDA_FACTS),
        supports_check_mode=True,
    )
    exit_module(module, [CONDA])


if __name__ == "__main__":
    main()
