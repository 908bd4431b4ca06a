#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: conda_clean
short_description: Policy-driven, reference-safe cleanup of conda package caches
version_added: 0.1.0
description:
  - Removes what C(conda clean) removes (tarballs, unused extracted packages, index cache, logs,
    temporary files) plus mamba's extras (trash, stale partial downloads, stale locks), from every
    cache of every discovered installation, or from the given O(roots) or O(pkgs_dirs).
  - Never breaks an environment. An extracted package that any known environment's PrefixRecord names
    (hard-linked, soft-linked or copied; any user; any envs_dir) is kept and the result says why. So is
    a package with files hard-linked from outside the removal set. C(conda clean --packages) decides from
    link counts alone and deletes the packages of soft-linked environments.
  - Plans first, then executes that plan. Check mode returns the same plan and changes nothing.
  - Removal is relative to directory descriptors opened without following symlinks. Extracted packages
    are renamed into the cache's C(.trash/) before deletion, so a killed run never leaves a
    half-deleted package under its own name; the next run empties the trash.
  - Each cache is locked for the run, and a cache in active use (a process working inside it, mamba's
    lock C(<pkgs_dir>/<dirname>.lock) held, or a partial download younger than O(busy_age)) is skipped
    with the reason. mamba's locks are POSIX record locks, which C(flock) does not see; both kinds are
    checked. A package or archive whose own lock (C(<file>.lock), C(<dir>/<dirname>.lock)) is held is
    kept, and a lock file is removed only while this module holds it.
  - micromamba caches (C(kind=mamba)) and mamba 2.6's channel-folder layout are cleaned by the same
    rules.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.attributes.cleanup
  - pkgcache.fleet.users.conda
  - pkgcache.fleet.environment.conda
  - pkgcache.fleet.conda_caches
  - pkgcache.fleet.policy_values
  - pkgcache.fleet.target
  - pkgcache.fleet.printable
  - pkgcache.fleet.compact
  - pkgcache.fleet.verify_environments
options:
  targets:
    description:
      - What to remove. V(all) means every other choice.
      - V(tarballs) package files (C(*.conda), C(*.tar.bz2)) not hard-linked elsewhere; V(packages)
        unused extracted packages; V(index_cache) C(cache/); V(logfiles) C(.logs/); V(trash) C(.trash/)
        and C(*.mamba_trash) in caches, and in known environment prefixes mamba's C(*.mamba_trash) files
        and directories, the entries of C(conda-meta/mamba_trash.txt) and that list once nothing it names
        remains; V(partial) stale C(*.partial) downloads; V(locks) lock files nobody holds;
        V(tempfiles) C(*.c~) and C(*.trash) files inside known environment prefixes.
    type: list
    elements: str
    choices: [all, tarballs, packages, index_cache, logfiles, trash, partial, locks, tempfiles]
    default: [all]
  purge:
    description:
      - B(Dangerous.) Empty the selected caches entirely instead of applying O(targets), like
        C(conda clean --force-pkgs-dirs) - every tarball and every extracted package, in use or not.
        Hard-linked and copied environments keep working (their files are their own links), but conda
        must download and extract again whatever it installs next.
      - Unlike conda, packages that soft-linked environments point into are kept, and so are C(urls.txt)
        and C(urls), so the directory stays a writable cache. O(exclude), O(min_age) and the gates still apply.
      - Requires O(confirm_purge=true).
    type: bool
    default: false
  confirm_purge:
    description:
      - Must be V(true) for O(purge) to run; a guard against a purge by accident.
    type: bool
    default: false
  min_age:
    description:
      - Keep items modified more recently than this (V(7d), V(12h), V(30m)). V(0) keeps nothing for
        age.
    type: str
    default: "0"
  keep_latest:
    description:
      - Keep the newest N versions of each package name, per cache, among tarballs and among extracted
        packages. V(0) disables.
    type: int
    default: 0
  keep_revisions:
    description:
      - Keep what C(conda install --rev) needs to take any environment back to one of its last N
        revisions before the current one, as C(conda-meta/history) records them (conda#5347) - tarballs
        and extracted packages of every dist installed at those revisions, with that reason in the
        plan. V(0) disables. The current revision needs nothing more; its records keep its packages.
    type: int
    default: 0
  exclude:
    description:
      - Shell patterns on dist names (C(name-version-build)) never to remove.
    type: list
    elements: str
    default: []
  when_free_below:
    description:
      - Only clean a cache when the free space on its filesystem is below this, in percent (V(10%)) or
        bytes (V(20G)). Otherwise the cache is skipped with the reason and nothing changes.
    type: str
  when_cache_above:
    description:
      - Only clean a cache whose on-disk size is above this (V(50G), bytes).
    type: str
  busy_age:
    description:
      - A C(*.partial) download younger than this marks the cache busy; older ones are stale.
    type: str
    default: 1h
notes:
  - The module fails and deletes nothing when reading the host meets any problem (a malformed config,
    a corrupt record, an unreadable directory), because what cannot be read might be in use.
seealso:
  - module: pkgcache.fleet.conda_cache_facts
"""

EXAMPLES = r"""
- name: Preview a full cleanup (run with --check --diff)
  pkgcache.fleet.conda_clean:
    targets: [all]

- name: Clean tarballs and unused packages older than a week, keeping the two newest versions
  pkgcache.fleet.conda_clean:
    targets: [tarballs, packages]
    min_age: 7d
    keep_latest: 2
    exclude:
      - "cudatoolkit-*"

- name: Keep what rolling any environment back two revisions needs, and fail if a clean broke one
  pkgcache.fleet.conda_clean:
    keep_revisions: 2
    verify_environments: true

- name: Only when the disk is getting full
  pkgcache.fleet.conda_clean:
    when_free_below: "10%"

- name: Once free space falls below 10%, remove the least recently used unused items until 20% is free
  pkgcache.fleet.conda_clean:
    targets: [tarballs, packages]
    when_free_below: "10%"
    target_free: "20%"

- name: Empty one cache completely (soft-linked environments are still protected)
  pkgcache.fleet.conda_clean:
    pkgs_dirs:
      - /home/alice/.conda/pkgs
    purge: true
    confirm_purge: true
"""

RETURN = r"""
verified_environments:
  description: >-
    With O(verify_environments) - C(environments) (the prefixes whose packages the plan touched),
    C(checked) (false in check mode, where they are only listed), C(unhealthy_before) and C(broken)
    (whole before, not after - C(path), C(problems) counted per kind, and per kind the problems as
    RV(pkgcache.fleet.conda_env_facts#module:ansible_facts.conda_envs.environments[].health) lists them).
    Null without O(verify_environments).
  returned: always
  type: dict
caches:
  description:
    - Per cache, what is (or would be) removed and what is kept, with reasons and bytes.
    - The shape every cleaning module of the collection returns.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The cache.
      type: str
      returned: always
    kind:
      description: C(conda), or C(mamba) for a cache only micromamba installations name.
      type: str
      returned: always
    users:
      description: Empty for conda caches (they belong to their installations).
      type: list
      elements: str
      returned: always
    skipped:
      description: Why the whole cache was left alone (gate not met, busy), else null.
      type: str
      returned: always
    remove:
      description:
        - Items removed, each with C(path), C(category), C(reason), C(apparent_bytes), C(disk_bytes).
        - Under a target also C(order) (oldest-first, over the caches of the filesystem), C(last_used) (epoch
          seconds) and C(running_total_bytes) (what the items up to this one free together).
      type: list
      elements: dict
      returned: always
    keep:
      description: Candidates kept, grouped by C(category) and C(reason), with C(count) and their C(paths).
      type: list
      elements: dict
      returned: always
    apparent_bytes:
      description: Apparent size of the items removed.
      type: int
      returned: always
    disk_bytes:
      description: On-disk size of the items removed, each inode once.
      type: int
      returned: always
    reclaimable_bytes:
      description: What removing the items frees (inodes with no link left elsewhere).
      type: int
      returned: always
    planned_bytes:
      description: The same as C(reclaimable_bytes).
      type: int
      returned: always
    freed_bytes:
      description: Reclaimable bytes of the items actually removed (0 in check mode).
      type: int
      returned: always
plan:
  description:
    - The per-cache plans of C(caches) in the shape of earlier releases, kept for existing consumers.
    - C(kept) lists each kept candidate with C(path), C(category) and C(reason).
  returned: always
  type: list
  elements: dict
tempfiles:
  description: Temporary files and mamba trash in environment prefixes removed (or to remove).
  returned: always
  type: list
  elements: str
removed:
  description: Paths actually removed (empty in check mode), escaped as the notes say; returned even when
    a later removal fails.
  returned: always
  type: list
  elements: str
planned_bytes:
  description: Reclaimable bytes of the whole plan, each inode once over all caches and tempfiles.
  returned: always
  type: int
freed_bytes:
  description: Free space gained per filesystem mount point, measured with statvfs (empty in check mode).
  returned: always
  type: dict
restricted:
  description:
    - Why the clean was restricted, or null. When a user's own conda config (in their home) cannot be read,
      the environments it names are unknown and might soft-link into any cache, so no extracted package is
      removed (and O(purge) is refused); tarballs, index cache, logs, trash, stale partial downloads and locks
      are still cleaned. Problems with any other config stop the run with nothing removed.
  returned: always
  type: str
skipped_caches:
  description: Number of caches left alone (gate not met, busy).
  returned: always
  type: int
target:
  description:
    - With O(target_free) or O(max_cache_size), one summary per filesystem holding selected caches, else null.
    - C(mount), C(caches) on it, C(target_free) and C(wanted_free_bytes), C(total_bytes), C(available_bytes)
      before, C(planned_bytes) the items taken free together, C(free_after_bytes) predicted, C(max_cache_size)
      and C(cache_sizes) (per cache C(size_bytes) and C(size_after_bytes)), C(taken) and C(kept) (items
      oldest-first), C(stopped_at) (the last item taken) and C(met).
  returned: always
  type: list
  elements: dict
msg:
  description: One-line summary.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_clean import argument_spec, clean_from_options
from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import exit_module
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        result, warnings = clean_from_options(module.params, module.check_mode)
    except ValueError as exc:
        Results(module).fail(str(exc))
    exit_module(module, result, "conda caches", warnings=warnings)


if __name__ == "__main__":
    main()
