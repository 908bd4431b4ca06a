#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pip_cache_clean
short_description: Purge, pattern and age-based cleanup of every user's pip cache; uv caches pruned as uv does
version_added: 0.1.0
description:
  - Finds each user's pip and uv cache as M(pkgcache.fleet.pip_cache_facts) does and cleans it
    in one of three ways - O(purge), O(patterns) or O(min_age) - and, independently, prunes or
    clears uv caches with O(uv).
  - pip's own rules (C(pip cache purge) and C(pip cache remove)) - a purge removes every file of
    C(http-v2) and C(http) and every wheel; then every directory left without files (in C(http-v2),
    C(http)) or without wheels (in C(wheels), so C(origin.json) goes with its wheel) is removed,
    part directories included, and so is the legacy C(selfcheck.json). C(selfcheck/) is kept unless
    O(include_selfcheck=true).
  - Plans first, then removes exactly that plan. Check mode returns the same plan and changes nothing;
    diff mode lists the paths. Freed space is measured per filesystem with C(statvfs).
  - With O(target_free) or O(max_cache_size), what the mode selects is taken entry by entry (an HTTP
    response with its body, a wheel, one item of our own uv prune; everything the host's C(uv) removes
    is one unit) until the target is met.
  - Removal goes through directory descriptors opened without following symlinks, so a symlink
    inside a user's cache never leads the removal elsewhere; ownership of what stays is untouched.
    A cache whose directory belongs to someone other than root or one of its users is skipped.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.attributes.cleanup
  - pkgcache.fleet.users.pip
  - pkgcache.fleet.environment.pip
  - pkgcache.fleet.policy_values
  - pkgcache.fleet.target
  - pkgcache.fleet.printable
  - pkgcache.fleet.compact
options:
  purge:
    description:
      - Empty the pip caches as C(pip cache purge) does. Cannot be combined with O(patterns) or O(min_age).
    type: bool
    default: false
  include_selfcheck:
    description:
      - With O(purge), also remove C(selfcheck/) (pip's state of its last version check; pip writes it again).
    type: bool
    default: false
  patterns:
    description:
      - Remove the wheels these patterns select, as C(pip cache remove <pattern>) does - a pattern
        without C(-) is a project name and selects C(<pattern>-*.whl), one with C(-) selects
        C(<pattern>*.whl); shell globs allowed, matched case-sensitively against file names in
        C(wheels/). The pattern V(*) also removes every HTTP file, like pip.
      - Cannot be combined with O(purge) or O(min_age).
    type: list
    elements: str
    default: []
  min_age:
    description:
      - Remove HTTP cache entries (a C(http-v2) metadata file together with its C(.body)) and wheels
        whose files are all older than this, then tidy directories as pip does.
      - A duration with a unit - V(30d), V(12h), V(2w), V(90s).
      - Cannot be combined with O(purge) or O(patterns).
    type: str
  uv:
    description:
      - Also clean uv caches, the way uv does - V(prune) as C(uv cache prune), V(clean) as C(uv cache clean).
        uv forbids changing its cache in any other way.
      - When the host has a C(uv) for the cache's owner, it does the work, run as that owner with
        C(UV_LOCK_TIMEOUT) and no config files. It is looked for as the owner's shell finds it -
        C(~/.local/bin/uv) and C(~/.cargo/bin/uv) (uv's installer), then the directories of C(PATH)
        from O(environment) (by default C(/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)).
        A C(uv) that anyone but root and the owner could replace is not used.
      - Without one, V(prune) removes exactly what C(uv cache prune) of the uv release this collection
        is tested with removes - top-level entries that are not its buckets (outdated buckets, stray
        files), cached environments, archives no wheel or sdist entry links to - holding uv's exclusive
        lock on C(<cache>/.lock); buckets of a newer uv are kept. V(clean) needs the host's C(uv);
        without it the cache is skipped with the reason.
      - Either way the plan is made under uv's lock, so check mode lists what a real run removes (exactly
        with the uv release this collection is tested with, see RV(caches[].left_by_uv)). A cache
        whose lock a running uv holds is skipped with the reason; a directory without C(CACHEDIR.TAG)
        is not treated as a uv cache.
    type: str
    choices: [prune, clean]
notes:
  - Run with C(become=true) to reach every user's cache.
seealso:
  - module: pkgcache.fleet.pip_cache_facts
"""

EXAMPLES = r"""
- name: Preview emptying every user's pip cache (run with --check --diff)
  pkgcache.fleet.pip_cache_clean:
    purge: true

- name: Remove cached wheels of two projects for alice and bob
  pkgcache.fleet.pip_cache_clean:
    users: [alice, bob]
    patterns:
      - numpy
      - "torch-2.0.*"

- name: Prune pip entries older than 30 days, and uv caches as uv cache prune does
  pkgcache.fleet.pip_cache_clean:
    min_age: 30d
    uv: prune
    environment:
      XDG_CACHE_HOME: /var/cache/users

- name: Bring every pip cache down to 2G, oldest entries first
  pkgcache.fleet.pip_cache_clean:
    min_age: "0"
    max_cache_size: 2G
"""

RETURN = r"""
caches:
  description: Per cache, what is (or would be) removed and what is kept, with reasons and bytes.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The cache directory.
      type: str
      returned: always
      sample: /home/alice/.cache/pip
    kind:
      description: C(pip) or C(uv).
      type: str
      returned: always
    tool:
      description: The same as C(kind) (the name of earlier releases).
      type: str
      returned: always
    cleaned_by:
      description: The host's C(uv) that cleaned this uv cache (as the cache's owner), else C(pkgcache.fleet).
      type: str
      returned: always
      sample: /home/alice/.local/bin/uv
    left_by_uv:
      description:
        - Planned paths the host's C(uv) kept (empty in check mode and when the module cleaned). The plan
          is what C(uv cache prune) of the uv release this collection is tested with removes; another
          release may keep some of it, and may remove more, which then shows only in RV(freed_bytes).
      type: list
      elements: str
      returned: always
    users:
      description: Users whose pip or uv resolves to this cache.
      type: list
      elements: str
      returned: always
    skipped:
      description: Why the whole cache was left alone (uv holds its lock, foreign owner), else null.
      type: str
      returned: always
    remove:
      description:
        - Paths removed whole, each with C(path), C(reason), C(apparent_bytes), C(disk_bytes).
        - Under a target also C(order) (oldest-first, over the caches of the filesystem), C(last_used) (epoch
          seconds) and C(running_total_bytes) (what the paths up to this one free together).
      type: list
      elements: dict
      returned: always
    keep:
      description: Candidates kept, grouped by C(reason), with their C(count) (C(paths) stays empty, young HTTP files are many).
      type: list
      elements: dict
      returned: always
    kept:
      description: Candidates kept, counted per reason (the shape of earlier releases).
      type: dict
      returned: always
      sample: {"newer than 30d": 12}
    apparent_bytes:
      description: Apparent size of the paths removed.
      type: int
      returned: always
    disk_bytes:
      description: On-disk size of the paths removed, each inode once.
      type: int
      returned: always
    reclaimable_bytes:
      description: What removing them frees (inodes with no link left elsewhere).
      type: int
      returned: always
    planned_bytes:
      description: The same as C(reclaimable_bytes).
      type: int
      returned: always
    freed_bytes:
      description: Reclaimable bytes of the paths actually removed (0 in check mode).
      type: int
      returned: always
removed:
  description: Paths actually removed (empty in check mode), escaped as the notes say; returned even when
    a later removal fails.
  returned: always
  type: list
  elements: str
planned_bytes:
  description: Reclaimable bytes of the whole plan, each inode once over all caches.
  returned: always
  type: int
freed_bytes:
  description: Free space gained per filesystem mount point, measured with statvfs (empty in check mode).
  returned: always
  type: dict
target:
  description:
    - With O(target_free) or O(max_cache_size), one summary per filesystem holding selected caches (where the
      oldest-first order stopped, the free space and cache sizes predicted, whether the target is met), else null.
    - The shape of RV(pkgcache.fleet.conda_clean#module:target) of M(pkgcache.fleet.conda_clean).
  returned: always
  type: list
  elements: dict
msg:
  description: One-line summary.
  returned: always
  type: str
  sample: removed 4 path(s), 824.0 KiB reclaimable, from 1 cache(s); 0 cache(s) skipped
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import clean_module
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_clean import argument_spec, clean_from_options


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    clean_module(module, clean_from_options, "pip/uv caches")


if __name__ == "__main__":
    main()
