#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cache_facts
short_description: Gather conda and pip cache facts in one call
version_added: 0.1.0
description:
  - Gathers C(ansible_facts.conda_cache) exactly as M(pkgcache.fleet.conda_cache_facts) does and
    C(ansible_facts.pip_cache) exactly as M(pkgcache.fleet.pip_cache_facts) does, in one module run -
    one connection and one transfer per host instead of two.
  - O(roots) and O(env_sizes) shape the conda facts only, O(list_packages) the conda and rattler facts, O(search_roots),
    O(search_depth), O(search_seconds) and O(prefixes) the rattler facts.
  - Read-only; problems with single files become warnings and the rest is still returned.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.attributes.facts
  - pkgcache.fleet.users
  - pkgcache.fleet.environment
  - pkgcache.fleet.conda_facts
  - pkgcache.fleet.conda_facts.roots
  - pkgcache.fleet.rattler
  - pkgcache.fleet.printable
options:
  gather:
    description:
      - Which facts to gather. V(conda) sets C(ansible_facts.conda_cache), V(pip) sets
        C(ansible_facts.pip_cache) (pip's and uv's caches), V(rattler) sets C(ansible_facts.rattler_cache)
        (pixi / rattler caches; only when asked for, since it searches every home for pixi workspaces,
        see O(search_roots)).
      - V(integrity) sets C(ansible_facts.conda_cache_integrity), an audit of every conda cache -
        each extracted package against its C(info/paths.json) (every file there, of its type and
        size; its sha256 with O(integrity_mode=full)), its C(info/repodata_record.json) against its
        C(info/index.json) (zeroed as mamba 2.1.1 to 2.3.2 left them, truncated, or naming another
        package), and each tarball against the size and sha256 (else md5) recorded for it in its
        dist's C(repodata_record.json) or as a C(#md5)/C(#sha256:) fragment in C(urls.txt).
        It reads every package, so it is not gathered by default.
        M(pkgcache.fleet.conda_cache_repair) quarantines or repairs what it finds.
      - V(envs) sets C(ansible_facts.conda_envs), every conda environment with its size and health, exactly as
        M(pkgcache.fleet.conda_env_facts) gathers them (in O(envs_mode)), in the same module run - one
        connection per host for a report that shows caches and environments. With V(rattler) in O(gather) too,
        the pixi / rattler prefixes its search finds are checked the same way, with C(tool=rattler).
    type: list
    elements: str
    choices: [conda, pip, rattler, integrity, envs]
    default: [conda, pip]
  integrity_mode:
    description:
      - V(fast) checks sizes and types (reads metadata and records, no file content).
      - V(full) also hashes every extracted file with a recorded sha256 and every tarball with a
        recorded hash, which finds a file altered without changing its size.
      - Only with V(integrity) in O(gather).
    type: str
    choices: [fast, full]
    default: fast
  envs_mode:
    description:
      - How environments are checked with V(envs) in O(gather); see
        O(pkgcache.fleet.conda_env_facts#module:mode).
    type: str
    choices: [fast, full]
    default: fast
  # users and environment take their type and default from their fragments; the texts say
  # what they select for each kind of facts.
  users:
    description:
      - Only these users. The names are looked up in the passwd database once for both kinds of
        facts; a name the database does not have fails the task, naming it, before anything is read.
      - The conda facts look into the homes of the named users that exist (config, environments,
        caches), each home once. Environments of the users left out are then unknown, so packages
        only their soft-linked environments use count as unused.
      - The pip facts report every named user, with a warning when the home directory is missing.
      - Empty (the default) means every account in the passwd database. The conda facts then look
        into every existing home; the pip facts report the accounts, C(root) included, that have a
        pip or uv cache on disk, and warn about a missing home only for accounts with a login shell
        (not C(nologin), C(false), ...).
  environment:
    description:
      - Environment variables as the users' shells set them, applied to every user. A module cannot
        see a user's login environment, so pass what your fleet sets.
      - The conda facts read them as O(pkgcache.fleet.conda_cache_facts#module:environment) does
        (C(CONDA_PKGS_DIRS), C(CONDA_ENVS_DIRS), C(CONDARC), ...), the pip facts as
        O(pkgcache.fleet.pip_cache_facts#module:environment) does (C(PIP_CACHE_DIR),
        C(XDG_CACHE_HOME), C(UV_CACHE_DIR), ...). A variable set to null is unset.
notes:
  - Run with C(become=true) to read every user's home.
seealso:
  - module: pkgcache.fleet.conda_cache_facts
  - module: pkgcache.fleet.pip_cache_facts
"""

EXAMPLES = r"""
- name: Gather conda and pip cache facts
  pkgcache.fleet.cache_facts:

- name: Show what cleaning would reclaim on this host
  ansible.builtin.debug:
    msg: >-
      conda {{ ansible_facts.conda_cache.totals.reclaimable_bytes | ansible.builtin.human_readable }};
      {{ ansible_facts.pip_cache.summary }}

- name: pixi / rattler caches too, with workspaces also under /srv/projects
  pkgcache.fleet.cache_facts:
    gather: [conda, pip, rattler]
    search_roots: [/home, /srv/projects]

- name: Audit every conda cache, hashing every file
  pkgcache.fleet.cache_facts:
    gather: [integrity]
    integrity_mode: full

- name: Fail when a cache holds damaged packages
  ansible.builtin.assert:
    that: ansible_facts.conda_cache_integrity.sound
    fail_msg: "Damaged: {{ ansible_facts.conda_cache_integrity.damaged | join(', ') }}"

- name: Only pip and uv caches, with the cache location the fleet's profile sets
  pkgcache.fleet.cache_facts:
    gather: [pip]
    environment:
      XDG_CACHE_HOME: /var/cache/users
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host, one key per kind in O(gather).
  returned: always
  type: dict
  contains:
    conda_cache:
      description: The same as RV(pkgcache.fleet.conda_cache_facts#module:ansible_facts.conda_cache).
      returned: when O(gather) contains V(conda)
      type: dict
    pip_cache:
      description: The same as RV(pkgcache.fleet.pip_cache_facts#module:ansible_facts.pip_cache).
      returned: when O(gather) contains V(pip)
      type: dict
    rattler_cache:
      description:
        - pixi / rattler caches (the roots pixi would use for each user, see M(pkgcache.fleet.rattler_cache_clean)).
        - C(caches) by root path, each with C(tool=rattler), its C(users), C(usage), C(sections) (its kinds -
          C(pkgs), C(repodata), C(uv-cache), ... - with bytes), C(in_use), C(unused), C(unused_reclaimable_bytes),
          C(shared_bytes) (in extents shared by reflink; null when the filesystem does not say), C(filesystem)
          (C(mount), C(total_bytes), C(free_bytes), C(available_bytes), as for conda's caches) and C(packages).
        - C(packages) is null unless O(list_packages); else each package's C(name), sizes, C(shared_bytes), its C(lock)
          (C(revision) and C(sha256)) and C(used_by), the prefixes whose records name it.
        - C(users) with each user's cache location and its C(source); C(environments), the prefixes found;
          C(search_incomplete), why some may be missing; C(totals) and a C(summary).
      returned: when O(gather) contains V(rattler)
      type: dict
    conda_envs:
      description: The same as RV(pkgcache.fleet.conda_env_facts#module:ansible_facts.conda_envs).
      returned: when O(gather) contains V(envs)
      type: dict
    conda_cache_integrity:
      description: The audit of the conda caches, when O(gather) contains V(integrity).
      returned: when O(gather) contains V(integrity)
      type: dict
      contains:
        mode:
          description: The O(integrity_mode) of the audit.
          type: str
          returned: always
        sound:
          description: True when nothing was found.
          type: bool
          returned: always
        findings:
          description: >-
            What is wrong, up to 1000 - C(entry) (the extracted package directory or tarball a
            repair works on), C(path) (the file concerned), C(what) (V(missing), V(not_a_file),
            V(not_a_directory), V(dangling), V(size), V(sha256), V(md5), V(zeroed), V(invalid_json),
            V(record_mismatch), V(outside), V(unreadable)), C(expected) and C(found).
          type: list
          elements: dict
          returned: always
        findings_count:
          description: How many findings there are, also beyond those listed.
          type: int
          returned: always
        damaged:
          description: Every entry (extracted directory or tarball) with a finding.
          type: list
          elements: str
          returned: always
        caches:
          description: >-
            Per cache - C(path), C(packages) and C(tarballs) checked, C(checked_files),
            C(hashed_files), C(unverified_tarballs) (no recorded hash to check them against) and its
            C(damaged) entries.
          type: list
          elements: dict
          returned: always
        totals:
          description: C(caches), C(packages), C(tarballs), C(damaged) and C(unverified_tarballs) over every cache.
          type: dict
          returned: always
        warnings:
          description: Problems met reading the host, each naming its path.
          type: list
          elements: str
          returned: always
        complete:
          description: Whether everything could be read (see RV(pkgcache.fleet.conda_cache_facts#module:ansible_facts.conda_cache.complete)).
          type: bool
          returned: always
        incomplete_reasons:
          description: What kept the audit from being complete; an empty list when it is.
          type: list
          elements: str
          returned: always
    pkgcache_self_clean:
      description:
        - The host's last scheduled clean (the P(pkgcache.fleet.cache_schedule#role) role's timer or
          cron entry), read from C(/var/lib/pkgcache/last-run.json) - when it finished, its exit code,
          whether it was a check run, and per command (C(clean), C(clean-pip), C(clean-rattler)) its message, planned and
          freed bytes, number of removed paths and errors - with a one-line C(summary).
        - C(error) instead when the record cannot be read.
      returned: when the host has such a record
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils.facts import argument_spec, exit_module


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    exit_module(module, module.params["gather"], self_clean_record=True)


if __name__ == "__main__":
    main()
