#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cache_metrics
short_description: Write a host's cache sizes and last clean as Prometheus metrics for node_exporter
version_added: 0.1.0
description:
  - Writes C(pkgcache.prom) into O(dest), the directory node_exporter's textfile collector reads
    (C(--collector.textfile.directory)) - gauges of every conda, mamba, pip, uv and pixi / rattler cache of the host, from
    the facts and clean results the play already has. Nothing is measured again.
  - C(pkgcache_cache_size_bytes{tool,path}) bytes on disk (each inode once);
    C(pkgcache_cache_reclaimable_bytes{tool,path}) what removing everything safe would free;
    C(pkgcache_cache_category_reclaimable_bytes{tool,path,category}) the same per category (conda's
    C(tarballs), C(unused), C(index_cache), C(logs), C(trash), C(partial), C(locks); pip's sections
    C(http-v2), C(http), C(wheels), C(selfcheck); uv's buckets; a rattler cache's C(unused) packages, the only part
    M(pkgcache.fleet.rattler_cache_clean) removes);
    C(pkgcache_last_clean_timestamp_seconds{tool}) and C(pkgcache_last_clean_removed_bytes{tool})
    the Unix time and the freed bytes of the last clean of that tool's caches that finished without errors.
  - The last clean of a tool is kept from the file being replaced when O(cleaned) has none for it
    (a facts-only run, a failed clean).
  - The file is replaced atomically (a temp file in O(dest), then a rename), so the collector never
    reads a partial file; O(dest) is created if missing. No sample carries a timestamp.
  - Label values are the printable strings of the facts (see the notes), escaped as the exposition
    format requires.
  - The P(pkgcache.fleet.cache_clean#role) role runs it when C(cache_clean_metrics_dir) is set.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.printable
attributes:
  check_mode:
    support: full
    description: Says whether the file would change and writes nothing.
  diff_mode:
    support: none
    description: No diff is returned.
options:
  dest:
    description: Directory node_exporter's textfile collector reads.
    type: path
    required: true
  facts:
    description:
      - The host's cache facts, C(conda_cache), C(pip_cache) and/or C(rattler_cache) as M(pkgcache.fleet.cache_facts)
        sets them (C(ansible_facts) itself will do).
    type: dict
    default: {}
  cleaned:
    description:
      - Registered results of M(pkgcache.fleet.conda_clean), M(pkgcache.fleet.pip_cache_clean) and
        M(pkgcache.fleet.rattler_cache_clean) run
        for real (not in check mode). Skipped and failed ones count for nothing.
    type: list
    elements: dict
    default: []
seealso:
  - module: pkgcache.fleet.cache_facts
  - module: pkgcache.fleet.conda_clean
  - module: pkgcache.fleet.pip_cache_clean
  - module: pkgcache.fleet.rattler_cache_clean
"""

EXAMPLES = r"""
- name: Export cache sizes to node_exporter
  pkgcache.fleet.cache_metrics:
    dest: /var/lib/prometheus/node-exporter
    facts: "{{ ansible_facts }}"
    cleaned:
      - "{{ conda_clean_result }}"
"""

RETURN = r"""
path:
  description: The metrics file.
  returned: always
  type: str
  sample: /var/lib/prometheus/node-exporter/pkgcache.prom
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils.metrics import write_textfile
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            facts=dict(type="dict", default={}),
            cleaned=dict(type="list", elements="dict", default=[]),
        ),
        supports_check_mode=True,
    )
    out = Results(module)
    try:
        path, changed = write_textfile(module.params["dest"], module.params["facts"], module.params["cleaned"],
                                       time.time(), module.check_mode)
    except OSError as exc:
        out.fail("cannot write the metrics into %s: %s" % (module.params["dest"], exc))
    out.exit(changed=changed, path=path)


if __name__ == "__main__":
    main()
