#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cache_clean
short_description: Clean conda, pip, uv and rattler caches in one run, to one target across them
version_added: 0.1.0
description:
  - Plans the cleanup of every cache kind in O(kinds) exactly as its own module does -
    M(pkgcache.fleet.conda_clean), M(pkgcache.fleet.pip_cache_clean) (pip and uv caches) and
    M(pkgcache.fleet.rattler_cache_clean), with the same rules for what is unused, whose rights a removal runs with,
    and which caches are busy - then removes all those plans in one pass.
  - With O(target_free) or O(max_cache_size) the oldest items go first across the caches of B(every) kind on a
    filesystem, so an old pip wheel goes before a conda package used yesterday; running the modules one after another
    would instead let the first one alone meet the target.
  - The locks each kind's planning takes (uv's and rattler's cache locks) are held until every removal has ended.
  - Plans first, then removes exactly that plan. Check mode returns the same plan and changes nothing; diff mode lists
    the paths.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.attributes.cleanup
  - pkgcache.fleet.users
  - pkgcache.fleet.environment
  - pkgcache.fleet.target
  - pkgcache.fleet.printable
  - pkgcache.fleet.compact
  - pkgcache.fleet.verify_environments
options:
  kinds:
    description:
      - The cache kinds to clean - V(conda) (conda and mamba caches), V(pip) (pip caches, and uv caches with
        O(pip.uv)), V(rattler) (pixi / rattler caches).
    type: list
    elements: str
    choices: [conda, pip, rattler]
    required: true
  conda:
    description: The options of M(pkgcache.fleet.conda_clean) other than the shared ones above, with its defaults.
    type: dict
    suboptions:
      targets:
        description: What to remove; see O(pkgcache.fleet.conda_clean#module:targets).
        type: list
        elements: str
        choices: [all, tarballs, packages, index_cache, logfiles, trash, partial, locks, tempfiles]
        default: [all]
      purge:
        description: Empty the selected caches entirely; see O(pkgcache.fleet.conda_clean#module:purge).
        type: bool
        default: false
      confirm_purge:
        description: Must be V(true) for O(conda.purge) to run.
        type: bool
        default: false
      min_age:
        description: Keep items modified more recently than this (V(7d), V(12h)).
        type: str
        default: "0"
      keep_latest:
        description: Keep the newest N versions of each package per cache; V(0) disables.
        type: int
        default: 0
      keep_revisions:
        description: Keep what C(conda install --rev) needs for the last N revisions; see
          O(pkgcache.fleet.conda_clean#module:keep_revisions).
        type: int
        default: 0
      exclude:
        description: Shell patterns on dist names never to remove.
        type: list
        elements: str
        default: []
      when_free_below:
        description: Only clean caches on filesystems with less free space than this (V(10%), V(20G)).
        type: str
      when_cache_above:
        description: Only clean caches larger than this (V(50G)).
        type: str
      busy_age:
        description: A partial download younger than this marks a cache busy.
        type: str
        default: 1h
      roots:
        description: Only the caches of these conda installations.
        type: list
        elements: path
        default: []
      pkgs_dirs:
        description: Only these caches.
        type: list
        elements: path
        default: []
  pip:
    description:
      - The options of M(pkgcache.fleet.pip_cache_clean) other than the shared ones above; with V(pip) in O(kinds)
        one of O(pip.purge), O(pip.patterns), O(pip.min_age) or O(pip.uv) is required.
    type: dict
    suboptions:
      purge:
        description: Empty the pip caches as C(pip cache purge) does.
        type: bool
        default: false
      include_selfcheck:
        description: With O(pip.purge), also remove pip's C(selfcheck/) state.
        type: bool
        default: false
      patterns:
        description: Remove the wheels these patterns select, as C(pip cache remove) does.
        type: list
        elements: str
        default: []
      min_age:
        description: Remove HTTP entries and wheels older than this (V(30d)); V(0) selects all of them.
        type: str
      uv:
        description: Also clean uv caches as uv does; see O(pkgcache.fleet.pip_cache_clean#module:uv).
        type: str
        choices: [prune, clean]
  rattler:
    description: The options of M(pkgcache.fleet.rattler_cache_clean) other than the shared ones above, with its defaults.
    type: dict
    suboptions:
      search_roots:
        description: Where to look for environments; see O(pkgcache.fleet.rattler_cache_clean#module:search_roots).
        type: list
        elements: str
      search_depth:
        description: How many directory levels below each search root are searched.
        type: int
        default: 4
      search_seconds:
        description: How long the search may take before every cache is skipped.
        type: int
        default: 60
      prefixes:
        description: Further environment prefixes whose packages are in use.
        type: list
        elements: str
        default: []
notes:
  - Run with C(become=true) to reach every user's caches and environments.
seealso:
  - module: pkgcache.fleet.conda_clean
  - module: pkgcache.fleet.pip_cache_clean
  - module: pkgcache.fleet.rattler_cache_clean
"""

EXAMPLES = r"""
- name: Keep 20% free on every cache filesystem, taking the oldest items of any kind first
  pkgcache.fleet.cache_clean:
    kinds: [conda, pip, rattler]
    target_free: 20%
    conda:
      targets: [tarballs, packages, index_cache, logfiles]
    pip:
      min_age: "0"
      uv: prune

- name: No cache above 50G, conda and pip alike
  pkgcache.fleet.cache_clean:
    kinds: [conda, pip]
    max_cache_size: 50G
    pip:
      min_age: 7d
"""

RETURN = r"""
caches:
  description:
    - Per cache, what is (or would be) removed and what is kept, with reasons and bytes - the shape of
      RV(pkgcache.fleet.conda_clean#module:caches), each with C(kind) and C(tool) (C(conda), C(mamba), C(pip), C(uv),
      C(rattler)); pip and uv caches also carry C(kept), C(cleaned_by) and C(left_by_uv) as
      RV(pkgcache.fleet.pip_cache_clean#module:caches) says.
  returned: always
  type: list
  elements: dict
removed:
  description: The paths a real run removed (none in check mode), escaped as the notes say.
  returned: always
  type: list
  elements: str
tempfiles:
  description: conda's leftovers in environment prefixes that are (or would be) removed.
  returned: always
  type: list
  elements: str
verified_environments:
  description:
    - With O(verify_environments), the environments checked - those the conda plans touch and those the rattler
      kind found whose records name a cache it removes from, checked together - as
      RV(pkgcache.fleet.conda_clean#module:verified_environments) says; else null.
  returned: always
  type: dict
restricted:
  description: Why conda's clean was restricted, or null; see RV(pkgcache.fleet.conda_clean#module:restricted).
  returned: always
  type: str
environments:
  description: The environment prefixes the rattler kind found, or null when it was not selected.
  returned: always
  type: list
  elements: str
planned_bytes:
  description: What the plan frees, each inode once over every cache of every kind.
  returned: always
  type: int
freed_bytes:
  description: Per filesystem mount point, how much free space grew (C(statvfs) before and after); empty in check mode.
  returned: always
  type: dict
target:
  description:
    - Per filesystem, how the target was met over the caches of every kind on it, as
      RV(pkgcache.fleet.conda_clean#module:target) says; null without a target.
  returned: always
  type: list
  elements: dict
msg:
  description: What was (or would be) removed from how many caches, in one line.
  returned: always
  type: str
  sample: removed 12 path(s), 3.1 MiB reclaimable, from 3 cache(s); 0 cache(s) skipped; target met on 1 of 1 filesystem(s)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils.cache_clean import argument_spec, clean_from_options
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import exit_module
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    out = Results(module)
    try:
        result = clean_from_options(module.params, out.warn, module.check_mode)
    except ValueError as exc:
        out.fail(str(exc))
    exit_module(module, result, "caches")


if __name__ == "__main__":
    main()
