#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: rattler_cache_clean
short_description: Remove the packages of every user's pixi / rattler cache that no environment uses
version_added: 0.1.0
description:
  - Finds each user's pixi / rattler cache root as pixi does - C(PIXI_CACHE_DIR), C(RATTLER_CACHE_DIR), C(root) of the
    C([cache]) table of pixi's global config files (C(/etc/pixi/config.toml), C(~/.config/pixi/config.toml),
    C($PIXI_HOME/config.toml), or C(PIXI_CONFIG_FILE) alone), C(~/.cache/pixi) (C($XDG_CACHE_HOME/pixi)) when it exists,
    else C(~/.cache/rattler/cache) - and removes from its C(pkgs) the extracted packages
    (C(<name>-<version>-<build>[-<hash>]/) with their C(.lock)) that no environment found uses.
  - Not read - per-kind locations (C([cache] conda-packages) and its variable), the redirect away from network
    filesystems, and a C(root) that is not a plain TOML string on one line (warned about). Name such caches with
    O(environment).
  - A package is in use when the records (C(conda-meta/*.json)) of an environment name it in
    C(extracted_package_dir), C(package_tarball_full_path) or C(link.source). Link counts decide nothing - rattler
    links by reflink first, and a reflinked file has one link.
  - Extents a package shares with other files (reflinks) are not counted as reclaimable where the filesystem
    reports them (FIEMAP on XFS and btrfs).
  - rattler's own cache lock C(pkgs/.cache.lock) is taken (non-blocking C(flock)) before planning and held until the
    removal ends; a cache whose lock an install holds is skipped with the reason.
  - Only C(pkgs) is cleaned; C(repodata), C(uv-cache) and the other kinds are reported by
    M(pkgcache.fleet.cache_facts) with O(pkgcache.fleet.cache_facts#module:gather=rattler).
  - Plans first, then removes exactly that plan, each cache with the rights of its owner. Check mode returns the
    same plan and changes nothing; diff mode lists the paths. Freed space is measured per filesystem with C(statvfs).
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.attributes.cleanup
  - pkgcache.fleet.users
  - pkgcache.fleet.environment
  - pkgcache.fleet.rattler
  - pkgcache.fleet.target
  - pkgcache.fleet.printable
  - pkgcache.fleet.compact
  - pkgcache.fleet.verify_environments
notes:
  - Run with C(become=true) to reach every user's cache and environments.
seealso:
  - module: pkgcache.fleet.cache_facts
"""

EXAMPLES = r"""
- name: Preview what every user's pixi cache would lose (run with --check --diff)
  pkgcache.fleet.rattler_cache_clean:

- name: Clean alice's cache, her workspaces being under /srv/projects
  pkgcache.fleet.rattler_cache_clean:
    users: [alice]
    search_roots: [/home/alice, /srv/projects]

- name: Remove unused packages oldest first until every cache is at most 20G
  pkgcache.fleet.rattler_cache_clean:
    max_cache_size: 20G
"""

RETURN = r"""
caches:
  description:
    - Per cache (its C(pkgs) directory), what is (or would be) removed and what is kept, with reasons and bytes - the
      shape of RV(pkgcache.fleet.pip_cache_clean#module:caches) without C(tool) and C(kept); C(kind) is C(rattler).
    - C(keep) groups the packages environments use by the first environment using each (C(used by <prefix>)), with
      their paths.
  returned: always
  type: list
  elements: dict
environments:
  description: The environment prefixes found, whose records protect what they use.
  returned: always
  type: list
  elements: str
verified_environments:
  description: >-
    With O(verify_environments), the environments found whose records name a cache the plan removes from, checked as
    RV(pkgcache.fleet.conda_clean#module:verified_environments) says; null without O(verify_environments).
  returned: always
  type: dict
removed:
  description: The paths a real run removed (none in check mode), escaped as the notes say.
  returned: always
  type: list
  elements: str
planned_bytes:
  description: What the plan frees, each inode once over every cache; extents a package shares by reflink do not count.
  returned: always
  type: int
freed_bytes:
  description: Per filesystem mount point, how much free space grew (C(statvfs) before and after); empty in check mode.
  returned: always
  type: dict
target:
  description: Per filesystem, how the target was met, as RV(pkgcache.fleet.conda_clean#module:target) says.
  returned: always
  type: list
  elements: dict
msg:
  description: What was (or would be) removed from how many caches, in one line.
  returned: always
  type: str
  sample: removed 6 path(s), 48.0 KiB reclaimable, from 1 cache(s); 0 cache(s) skipped
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import clean_module
from ansible_collections.pkgcache.fleet.plugins.module_utils.rattler_clean import argument_spec, clean_from_options


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    clean_module(module, clean_from_options, "rattler caches")


if __name__ == "__main__":
    main()
