#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: conda_env_facts
short_description: Gather facts and health checks for every conda environment on a host
version_added: 0.1.0
description:
  - Finds every known conda environment as M(pkgcache.fleet.conda_cache_facts) does (every root
    prefix, every C(envs_dirs) of every user's effective configuration, every user's
    C(~/.conda/environments.txt)), without running conda.
  - Per environment, its owner, package count, link types, size on disk (what only it holds apart
    from what it shares by hard links with caches or other environments, each inode once), the caches
    it depends on (C(extracted_package_dir) of its records; soft-linked ones are needed at run
    time) and its last change (C(conda-meta/history)).
  - Checks each environment's health as C(conda doctor) does, against its PrefixRecords
    (C(conda-meta/*.json)) - files listed there that are missing, symlinks that lead nowhere,
    regular files whose size differs from the record (and, with O(mode=full), whose sha256 differs),
    records that cannot be read, and packages the replayed C(conda-meta/history) and the records
    disagree on.
  - Also lists each environment's orphans - installed packages no requested spec needs any more
    (what a prune or autoremove would drop), never removing them.
  - Read-only; problems reading single files become warnings and the rest is still returned.
author:
  - pkgcache.fleet contributors (@pkgcache)
options:
  mode:
    description:
      - V(fast) checks that every listed file is there and has its recorded size.
      - V(full) also hashes every file that has a recorded sha256 (C(sha256_in_prefix) where conda
        rewrote the prefix into the file), which finds a file altered without changing its size.
        It reads every byte of every environment.
    type: str
    choices: [fast, full]
    default: fast
extends_documentation_fragment:
  - pkgcache.fleet.attributes.facts
  - pkgcache.fleet.conda_facts.roots
  - pkgcache.fleet.users.conda
  - pkgcache.fleet.environment.conda
  - pkgcache.fleet.workers
  - pkgcache.fleet.printable
notes:
  - Environments are checked O(workers) at a time.
  - Files are hashed through descriptors opened without following symlinks, and only when their
    directory resolves inside the environment; a soft-linked environment's files are checked in
    the package's extracted directory the record names, and only there.
  - A file conda rewrote (a prefix placeholder in text mode) and recorded no new hash for is only
    checked for being there.
seealso:
  - module: pkgcache.fleet.conda_cache_facts
"""

EXAMPLES = r"""
- name: Gather environment facts with the fast health check
  pkgcache.fleet.conda_env_facts:

- name: Fail when an environment is no longer whole
  ansible.builtin.assert:
    that: ansible_facts.conda_envs.unhealthy | length == 0
    fail_msg: "Unhealthy environments: {{ ansible_facts.conda_envs.unhealthy | join(', ') }}"

- name: Hash every file of alice's environments
  pkgcache.fleet.conda_env_facts:
    users: [alice]
    mode: full
    workers: 4
"""

RETURN = r"""
ansible_facts:
  description: Facts added under C(conda_envs).
  returned: always
  type: dict
  contains:
    conda_envs:
      description: Every known environment of this host, with totals.
      returned: always
      type: dict
      contains:
        mode:
          description: The O(mode) the health was checked in.
          type: str
          returned: always
        environments:
          description: Every known environment (all users, every C(envs_dirs), every C(environments.txt)), each once.
          type: list
          elements: dict
          returned: always
          contains:
            path:
              description: The environment's prefix as it was found (a root prefix is one too).
              type: str
              returned: always
            root:
              description: >-
                Root prefix of the installation it belongs to (itself for a root), null when it lies
                outside every installation's C(envs).
              type: str
              returned: always
            tool:
              description: >-
                V(conda) for an environment conda's rules find (micromamba's roots included); V(rattler) for a pixi /
                rattler prefix, which M(pkgcache.fleet.cache_facts) adds with V(rattler) and V(envs) in its O(pkgcache.fleet.cache_facts#module:gather).
              type: str
              returned: always
            owner:
              description: User owning the prefix directory.
              type: str
              returned: always
            package_count:
              description: Records in its C(conda-meta), corrupt ones included.
              type: int
              returned: always
            link_types:
              description: >-
                How the records say their files were linked, as records per link type (hardlink,
                softlink, copy, directory; unknown for a corrupt record).
              type: dict
              returned: always
            size:
              description: >-
                C(files), C(apparent_bytes), C(disk_bytes) (each inode once), C(exclusive_bytes)
                (inodes with every link inside the environment, what removing it frees) and
                C(shared_bytes) (hard-linked with a cache or another environment). Environments
                and caches inside a root prefix are not counted in it.
              type: dict
              returned: always
            caches:
              description: >-
                The package caches its records were linked from - C(path), C(configured) (a
                C(pkgs_dirs) entry of some configuration), C(packages), C(soft_linked) (records linked
                by symlinks), C(extracted_present) (records whose extracted directory is still
                there) and C(needed_at_runtime) (soft-linked packages live there).
              type: list
              elements: dict
              returned: always
            last_change:
              description: C(timestamp) (seconds) and C(date) (UTC) of C(conda-meta/history)'s last modification.
              type: dict
              returned: always
            health:
              description: >-
                C(healthy), C(checked_files), C(hashed_files), C(sha256_checked), C(history_checked)
                (false when the history names no package), C(problems) (count per kind) and, per
                kind, up to 100 entries each - C(missing) and C(dangling) (C(package), C(path),
                C(target) for links), C(altered) (C(package), C(path), C(reason)),
                C(corrupt_records) (record files), C(not_in_history) and C(not_in_records) (dists).
              type: dict
              returned: always
            orphans:
              description: >-
                What a prune would drop, reported and never removed - C(packages) (dists) installed
                that no spec the user requested (C(requested), names from the history's
                C(# update specs) and C(# remove specs) comments) needs through the records'
                C(depends); pip counts as python's dependency, as conda adds it by default.
                C(checked) is false, and nothing listed, without a history, without a requested spec
                in it, or with a record that cannot be read.
              type: dict
              returned: always
        unhealthy:
          description: Prefixes of the environments with a problem.
          type: list
          elements: str
          returned: always
        totals:
          description: >-
            C(environments), C(unhealthy), C(packages), C(disk_bytes) and C(exclusive_bytes) summed
            over the environments (an inode two environments share by a hard link counts in both
            C(disk_bytes), and in neither C(exclusive_bytes)).
          type: dict
          returned: always
        warnings:
          description: Problems met (unreadable or corrupt files), each naming its path.
          type: list
          elements: str
          returned: always
        complete:
          description:
            - Whether every environment, record and history could be read.
            - False without root (no become) when other users are asked for, and when a warning was given.
          type: bool
          returned: always
        incomplete_reasons:
          description: What kept the facts from being complete; an empty list when they are.
          type: list
          elements: str
          returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils import options
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_envs import FAST, MODES
from ansible_collections.pkgcache.fleet.plugins.module_utils.facts import ENVS, exit_module


def main():
    module = AnsibleModule(
        argument_spec=options.argument_spec(
            options.USERS, options.ENVIRONMENT, options.WORKERS, options.ROOTS,
            mode=dict(type="str", choices=list(MODES), default=FAST),
        ),
        supports_check_mode=True,
    )
    try:
        options.check_workers(module.params["workers"])
    except options.OptionError as exc:
        module.fail_json(msg=str(exc))
    exit_module(module, [ENVS])


if __name__ == "__main__":
    main()
