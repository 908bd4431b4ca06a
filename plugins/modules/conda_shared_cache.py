#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: conda_shared_cache
short_description: Audit and fix a conda package cache several users share
version_added: 0.2.0
description:
  - Walks one conda package cache (C(pkgs) directory) and compares every directory and file with what a
    cache shared by a group needs. With O(state=audited) it only reports the drift; with O(state=fixed) it
    creates a missing cache and repairs what drifted. Check mode and diff say exactly what would change.
  - Every directory and file belongs to O(group); every directory is setgid, so entries created later
    get the group too.
  - With O(access=writable) every directory is group-writable and every file group-readable and -writable,
    and C(urls.txt) is a regular file the group may append to. conda downloads into the first cache whose
    C(urls.txt) opens for append, and C(conda clean) skips the others.
  - With O(access=read_only) nothing is group-writable and C(urls.txt) exists but the group cannot append
    to it. conda run by a member reads packages from the cache and downloads into the next entry of
    C(pkgs_dirs), a per-user cache. Every entry belongs to O(owner).
  - Where the filesystem supports POSIX ACLs (O(acl)), every directory gets a default ACL mirroring its
    mode, so new entries get the group's bits whatever the creating user's umask. The ACL is written as the
    C(system.posix_acl_default) extended attribute directly; the host needs no C(acl) package.
  - conda applies the modes packages carry when it extracts them (directories C(0755)), so in a writable
    cache each install leaves extracted packages the group cannot change. Run the audit regularly; the fix
    gives the group its bits back.
  - An entry owned by somebody who is neither O(owner) nor a member of O(group) is given to O(owner); the
    module never gives anything to anybody else. In a read-only cache everything belongs to O(owner).
  - Symlinks are never followed and never changed, and the cache itself must be reached without one. A
    C(urls.txt) or C(urls) that is a symlink or no regular file is reported, not fixed.
  - Modes and owners belong to inodes. Environments hard-linked to the cache share them.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.printable
attributes:
  check_mode:
    support: full
    description: Returns the drift the fix would repair, entry by entry, and changes nothing.
  diff_mode:
    support: full
    description: One line per drifted entry, with its owner, group, mode and default ACL before and after.
options:
  path:
    description: The cache directory. Its parent must exist.
    type: path
    required: true
  group:
    description:
      - The group whose members share the cache. Members are the accounts whose primary group it is and
        those the group database lists.
    type: str
    required: true
  owner:
    description:
      - The account entries owned by somebody outside O(group) are given to, and the owner of a created
        cache and its C(urls.txt).
    type: str
    default: root
  access:
    description: Whether members download into the cache (V(writable)) or only read packages from it (V(read_only)).
    type: str
    choices: [writable, read_only]
    default: writable
  acl:
    description:
      - V(auto) sets default ACLs where the filesystem supports them. V(required) fails on a filesystem
        without POSIX ACLs. V(never) neither checks nor sets them.
    type: str
    choices: [auto, required, never]
    default: auto
  state:
    description: V(audited) only reports the drift; V(fixed) repairs it.
    type: str
    choices: [audited, fixed]
    default: audited
  max_drift:
    description: At most this many entries are listed in RV(drift); RV(drift_count) counts them all.
    type: int
    default: 1000
"""

EXAMPLES = r"""
- name: Report what keeps the shared cache from working for group conda
  pkgcache.fleet.conda_shared_cache:
    path: /opt/conda/pkgs
    group: conda
  register: audit

- name: Repair it
  pkgcache.fleet.conda_shared_cache:
    path: /opt/conda/pkgs
    group: conda
    state: fixed

- name: A read-only cache maintained by the conda account
  pkgcache.fleet.conda_shared_cache:
    path: /srv/conda/pkgs
    group: conda
    owner: conda
    access: read_only
    state: fixed
"""

RETURN = r"""
path:
  description: The cache.
  returned: always
  type: str
drift:
  description: The entries that are not as the cache needs them (at most O(max_drift)), in walk order.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The entry.
      type: str
    kind:
      description: C(directory), C(file), or C(missing).
      type: str
    what:
      description:
        - What is wrong, some of C(missing), C(marker), C(owner), C(group), C(setgid), C(mode), C(default_acl).
        - C(setid) is a setuid or setgid file, reported and never changed.
      type: list
      elements: str
    why:
      description: Why it matters, in words.
      type: str
    before:
      description: C(owner), C(group), C(mode) (and C(default_acl) of a directory), or null when missing.
      type: dict
    after:
      description: The same after the fix, or null when the module does not fix it.
      type: dict
    fixable:
      description: Whether O(state=fixed) repairs it.
      type: bool
drift_count:
  description: How many entries drifted (all of them, not only those listed).
  returned: always
  type: int
drift_by_what:
  description: How many entries have each kind of drift.
  returned: always
  type: dict
entries:
  description: Directories and files examined.
  returned: always
  type: int
unfixable:
  description: Entries the module reports but does not fix, and fixes the kernel refused, as C(path - reason).
  returned: always
  type: list
  elements: str
acl_supported:
  description: Whether the cache's filesystem supports POSIX ACLs; null with O(acl=never).
  returned: always
  type: bool
conda_writable:
  description:
    - For every member of O(group) and O(owner), whether their conda would download into the cache
      (C(urls.txt) opens for append with their credentials), as the cache is after the fix (before it in check
      mode); null when the run cannot take their credentials (not root) or C(urls.txt) is missing.
  returned: always
  type: dict
created:
  description: Whether the cache directory was (or would be) created.
  returned: always
  type: bool
msg:
  description: One-line summary.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pkgcache.fleet.plugins.module_utils import options
from ansible_collections.pkgcache.fleet.plugins.module_utils.shared_cache import (
    READ_ONLY, WRITABLE, Policy, SharedCacheError, run, writability)
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results


def summary(audit, fixing, check_mode):
    drifted = len(audit.changes)
    if not drifted:
        return "%s: %d entries as a %s shared cache needs them" % (audit.policy.path, audit.entries, audit.policy.access)
    verb = "drifted" if not fixing else ("would fix" if check_mode else "fixed")
    fixable = len(audit.fixable)
    return "%s: %s %d of %d entries (%s)%s" % (
        audit.policy.path, verb, fixable if fixing else drifted, audit.entries,
        ", ".join("%s %d" % item for item in sorted(audit.counts().items())),
        "; %d not fixable" % (drifted - fixable) if drifted != fixable else "")


def main():
    module = AnsibleModule(
        argument_spec=options.argument_spec(
            path=dict(type="path", required=True),
            group=dict(type="str", required=True),
            owner=dict(type="str", default="root"),
            access=dict(type="str", choices=[WRITABLE, READ_ONLY], default=WRITABLE),
            acl=dict(type="str", choices=["auto", "required", "never"], default="auto"),
            state=dict(type="str", choices=["audited", "fixed"], default="audited"),
            max_drift=dict(type="int", default=1000),
        ),
        supports_check_mode=True,
    )
    params = module.params
    fixing = params["state"] == "fixed"
    try:
        policy = Policy(params["path"], params["group"], params["owner"], params["access"], params["acl"])
        audit = run(policy, fixing and not module.check_mode)
    except (SharedCacheError, OSError) as exc:
        Results(module).fail(str(exc))
    unfixable = ["%s - %s" % (c.path, c.as_dict()["why"]) for c in audit.changes if not c.fixable] + audit.failed
    result = dict(
        changed=fixing and len(audit.fixable) > len(audit.failed),
        path=policy.path,
        drift=[c.as_dict() for c in audit.changes[:max(params["max_drift"], 0)]],
        drift_count=len(audit.changes),
        drift_by_what=audit.counts(),
        entries=audit.entries,
        unfixable=unfixable,
        acl_supported=audit.acl_supported,
        conda_writable=writability(policy) if not (audit.created and module.check_mode) else {},
        created=audit.created,
    )
    msg = summary(audit, fixing, module.check_mode)
    if module._diff and fixing:
        result["diff"] = audit.diff()
    if audit.failed and not module.check_mode:
        Results(module).fail("%d fix(es) refused: %s (%s)" % (len(audit.failed), "; ".join(audit.failed[:5]), msg), **result)
    Results(module).exit(msg=msg, **result)


if __name__ == "__main__":
    main()
