#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: conda_cache_repair
short_description: Quarantine damaged conda cache entries and re-extract damaged packages from verified tarballs
version_added: 0.1.0
description:
  - Audits the conda caches as O(pkgcache.fleet.cache_facts#module:gather=integrity) does and acts on
    every damaged entry. Opt-in - nothing else in the collection calls it.
  - Nothing is deleted. A damaged extracted package or tarball is moved into
    C(<pkgs_dir>/.quarantine/<UTC stamp>/) - a rename on the same filesystem - and recorded with its
    findings in that directory's C(quarantine.json). conda looks for packages at the top of the cache
    only, so it no longer treats a moved entry as valid.
  - A damaged extracted package whose C(.tar.bz2) tarball is verified (its sha256, else md5, as the
    dist's C(repodata_record.json) or a C(urls.txt) fragment records it) is re-extracted from it with
    Python's C(tarfile) - a member with an absolute name, a C(..), a link leading out of the package,
    or a device is refused - and the new directory replaces the old only after every file matched its
    C(info/paths.json) sizes and sha256.
  - A C(.conda) tarball holds zstd-compressed tars and zstd is not in Python's standard library, so
    such a package is not re-extracted here - it is quarantined and its verified tarball left in place;
    conda extracts it again the next time an environment needs it ("needs conda"). Without a verified
    tarball conda downloads the package again.
  - A damaged tarball is quarantined; with O(backup_dest), an intact copy of it in that backup store
    (M(pkgcache.fleet.conda_pkgs_backup)) is copied back in its place.
  - An extracted package a soft-linked environment points into is kept, not quarantined, unless it is
    re-extracted in the same run - moving it would break the environment further.
  - Each cache is changed with its owner's credentials, as M(pkgcache.fleet.conda_clean) removes, under
    the same cache lock.
author:
  - pkgcache.fleet contributors (@pkgcache)
options:
  mode:
    description:
      - How the caches are audited. V(fast) checks sizes, types and records; V(full) also hashes every
        extracted file and tarball. A tarball is always hashed before a package is re-extracted from it.
    type: str
    choices: [fast, full]
    default: fast
  re_extract:
    description:
      - Re-extract damaged packages from their verified C(.tar.bz2). V(false) only quarantines.
    type: bool
    default: true
  backup_dest:
    description:
      - A backup store (the O(pkgcache.fleet.conda_pkgs_backup#module:dest) of a backup) to copy damaged
        tarballs back from. Its objects are read by the cache's owner, as plain files.
    type: path
extends_documentation_fragment:
  - pkgcache.fleet.attributes.cleanup
  - pkgcache.fleet.conda_caches
  - pkgcache.fleet.users.conda
  - pkgcache.fleet.environment.conda
  - pkgcache.fleet.printable
notes:
  - Refuses to change anything when the host's conda state is not fully known (an unreadable config
    or environment), as M(pkgcache.fleet.conda_clean) does; run with C(become=true).
  - M(pkgcache.fleet.conda_clean) with O(pkgcache.fleet.conda_clean#module:purge=true) removes the
    C(.quarantine) directory with the rest of the cache; otherwise it stays until you remove it.
seealso:
  - module: pkgcache.fleet.cache_facts
  - module: pkgcache.fleet.conda_clean
"""

EXAMPLES = r"""
- name: See what a repair would do
  pkgcache.fleet.conda_cache_repair:
    mode: full
  check_mode: true
  diff: true

- name: Repair the caches, tarballs copied back from the backup store
  pkgcache.fleet.conda_cache_repair:
    mode: full
    backup_dest: /backup/conda
  become: true
"""

RETURN = r"""
mode:
  description: The O(mode) of the audit.
  returned: always
  type: str
caches:
  description: >-
    Per cache - C(path), C(skipped) (why nobody may change it), C(steps) (per damaged dist its
    C(action) - V(repair), V(quarantine) or V(keep) - the C(package) and C(tarball) paths,
    C(quarantine_package), C(quarantine_tarball), C(re_extract), C(restore_tarball_from), C(kept) (why
    the package stays), C(note) (V(needs conda) and the like) and C(findings)), C(quarantine) (the
    directory things were moved to), C(done) and C(errors).
  returned: always
  type: list
  elements: dict
quarantined:
  description: Where each moved entry now is.
  returned: always
  type: list
  elements: str
re_extracted:
  description: Extracted packages replaced by a fresh extraction of their verified tarball.
  returned: always
  type: list
  elements: str
msg:
  description: One line - how many damaged dists were, or would be, re-extracted, quarantined or kept.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_repair import (
    argument_spec, exit_module, repair_from_options)
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        result, warnings = repair_from_options(module.params, module.check_mode)
    except ValueError as exc:
        Results(module).fail(str(exc))
    exit_module(module, result, warnings)


if __name__ == "__main__":
    main()
