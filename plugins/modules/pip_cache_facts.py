#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pip_cache_facts
short_description: Gather facts about every user's pip cache (and uv cache)
version_added: 0.1.0
description:
  - Finds each user's pip cache directory by pip's own rules, without running pip, reading the
    user's configuration files from their home. Precedence, lowest first - C([global]) of the
    config files, then C([install]) of the config files (C(pip install) is what fills the cache),
    then C(PIP_*) variables from O(environment). Within a section a later file wins; files are
    read in pip's order - C($XDG_CONFIG_DIRS/pip/pip.conf) (default C(/etc/xdg)), C(/etc/pip.conf),
    C(~/.pip/pip.conf), C($XDG_CONFIG_HOME/pip/pip.conf) (default C(~/.config)),
    C($VIRTUAL_ENV/pip.conf), C(PIP_CONFIG_FILE). User files are skipped when C(PIP_CONFIG_FILE)
    names an existing file, every file when it is C(/dev/null).
  - Without C(cache-dir) the cache is C($XDG_CACHE_HOME/pip), else C(~/.cache/pip). A valid
    C(no-cache-dir) anywhere (even C(false), as in pip) disables the cache; it is still measured
    if it exists, since its bytes are still on disk.
  - Finds uv's cache as C(uv cache dir) does for that user - C(UV_CACHE_DIR), else C(cache-dir) of their
    C(uv.toml) (C($XDG_CONFIG_HOME/uv) or C(~/.config/uv)), then of the system's (the first of
    C($XDG_CONFIG_DIRS/uv), default C(/etc/xdg/uv), else C(/etc/uv)), else C($XDG_CACHE_HOME/uv) or
    C(~/.cache/uv). C(UV_CONFIG_FILE) replaces both files, C(UV_NO_CONFIG) skips them; a project's own
    C(uv.toml) depends on where uv runs and is not read.
  - uv caches are measured as C(uv cache size) counts them (on-disk bytes, each inode once).
  - Measures each distinct cache once, per top-level part (pip's C(http-v2), C(http), C(wheels),
    C(selfcheck); uv's versioned buckets; C(other) for the rest) in apparent bytes, on-disk bytes
    (each inode once) and reclaimable bytes (inodes with no link outside the part), with the count
    and the oldest and newest modification time of the cached items.
  - Read-only. No symlink inside a cache is followed and walks stay on one filesystem; the cache
    directory itself is resolved like pip does (symlinks in its path are followed). Unreadable or
    malformed files become warnings naming the file, and everything else is still returned.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.attributes.facts
  - pkgcache.fleet.users.pip
  - pkgcache.fleet.environment.pip
  - pkgcache.fleet.printable
options:
  # Reporting differs from the cleanup's, so this module says what users means here (type and
  # default from the users fragment).
  users:
    description:
      - Only these users. They are always reported, with a warning when a home directory is
        missing. A name the passwd database does not have fails the task, naming it, before
        anything is read.
      - Empty (the default) means every account in the passwd database, C(root) included, of which
        those with a pip or uv cache on disk are reported. A missing home is warned about for
        accounts with a login shell (not C(nologin), C(false), ...), as system accounts often
        name homes that were never created.
notes:
  - Run with C(become=true) to read every user's home.
  - Config files are read as UTF-8; of a C(uv.toml) only a top-level C(cache-dir) string is read.
  - A relative C(cache-dir) depends on the directory pip or uv runs in; it is resolved against the
    user's home, with a warning (uv does not expand C(~) in it).
seealso:
  - module: pkgcache.fleet.conda_cache_facts
  - module: pkgcache.fleet.cache_facts
    description: Conda and pip cache facts in one call.
"""

EXAMPLES = r"""
- name: Gather pip and uv cache facts for every user
  pkgcache.fleet.pip_cache_facts:

- name: Only two users, with the cache location the fleet's profile sets
  pkgcache.fleet.pip_cache_facts:
    users: [alice, bob]
    environment:
      XDG_CACHE_HOME: /var/cache/users

- name: Show how much the pip caches hold on this host
  ansible.builtin.debug:
    msg: "{{ ansible_facts.pip_cache.summary }}"

- name: Alice's pip wheel cache size
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts.pip_cache.caches[ansible_facts.pip_cache.users.alice.pip.path]
         .sections.wheels.disk_bytes | ansible.builtin.human_readable }}
"""

RETURN = r"""
ansible_facts:
  description: Facts added to the host.
  returned: always
  type: dict
  contains:
    pip_cache:
      description: Every reported user's cache locations, every existing cache measured once, totals.
      returned: always
      type: dict
      contains:
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
        users:
          description: Per user name, where their pip and uv caches are.
          returned: always
          type: dict
          contains:
            uid:
              description: The user's uid.
              type: int
              returned: always
              sample: 1000
            home:
              description: Home directory from passwd.
              type: str
              returned: always
              sample: /home/alice
            pip:
              description: The pip cache this user's C(pip install) uses.
              type: dict
              returned: always
              contains:
                path:
                  description: Cache directory (real path, as pip normalises it); key into RV(ansible_facts.pip_cache.caches).
                  type: str
                  returned: always
                  sample: /home/alice/.cache/pip
                enabled:
                  description: False when C(no-cache-dir) is set.
                  type: bool
                  returned: always
                source:
                  description:
                    - What decided the path - C(default) (C(~/.cache/pip)), C(XDG_CACHE_HOME), C(PIP_CACHE_DIR),
                      or C(<file> [<section>]) for a config file.
                  type: str
                  returned: always
                  sample: /etc/pip.conf [global]
                disabled_by:
                  description: Where C(no-cache-dir) came from, or null.
                  type: str
                  returned: always
                  sample: PIP_NO_CACHE_DIR
                config_files:
                  description: The pip config files that were read, in pip's order.
                  type: list
                  elements: str
                  returned: always
                exists:
                  description: Whether the cache directory exists.
                  type: bool
                  returned: always
            uv:
              description: The uv cache this user's uv uses.
              type: dict
              returned: always
              contains:
                path:
                  description: Cache directory (real path); key into RV(ansible_facts.pip_cache.caches).
                  type: str
                  returned: always
                  sample: /home/alice/.cache/uv
                source:
                  description: C(UV_CACHE_DIR), the C(uv.toml) that set it, C(XDG_CACHE_HOME) or C(default) (C(~/.cache/uv)).
                  type: str
                  returned: always
                exists:
                  description: Whether the cache directory exists.
                  type: bool
                  returned: always
        caches:
          description: Per existing cache directory, its measurements; shared caches appear once.
          returned: always
          type: dict
          contains:
            tool:
              description: C(pip) or C(uv).
              type: str
              returned: always
            users:
              description: Reported users whose pip or uv resolves to this directory.
              type: list
              elements: str
              returned: always
            usage:
              description: The whole cache directory; the same keys as each of RV(ansible_facts.pip_cache.caches.sections).
              type: dict
              returned: always
            filesystem:
              description: C(mount), C(total_bytes), C(free_bytes), C(available_bytes) of its filesystem (statvfs).
              type: dict
              returned: always
            sections:
              description:
                - Per top-level part. pip - C(http-v2), C(http), C(wheels), C(selfcheck) (always
                  present) and C(other). uv - one per bucket directory (C(wheels-v8),
                  C(archive-v0), ...) and C(other) for the files at the top.
              type: dict
              returned: always
              contains:
                entries:
                  description: Directory entries walked (files, directories, symlinks).
                  type: int
                  returned: always
                files:
                  description: Regular files.
                  type: int
                  returned: always
                apparent_bytes:
                  description: Sum of file and symlink sizes.
                  type: int
                  returned: always
                disk_bytes:
                  description: Allocated bytes, each inode once (what C(du) reports).
                  type: int
                  returned: always
                reclaimable_bytes:
                  description: Bytes freed by removing the part; hard links from outside keep theirs.
                  type: int
                  returned: always
                items:
                  description:
                    - Cached items - HTTP responses (an C(http-v2) metadata file with its C(.body)),
                      wheels (C(*.whl)), selfcheck state files (C(*.json)); every regular file
                      for uv and C(other).
                  type: int
                  returned: always
                oldest_mtime:
                  description: Oldest item modification time (epoch seconds), null without items.
                  type: int
                  returned: always
                newest_mtime:
                  description: Newest item modification time (epoch seconds), null without items.
                  type: int
                  returned: always
                oldest_age_seconds:
                  description: Seconds since RV(ansible_facts.pip_cache.caches.sections.oldest_mtime) at gathering time.
                  type: int
                  returned: always
                newest_age_seconds:
                  description: Seconds since RV(ansible_facts.pip_cache.caches.sections.newest_mtime) at gathering time.
                  type: int
                  returned: always
        totals:
          description:
            - C(pip), C(uv) and C(all) - every cache folded together, each inode once; the same
              keys as RV(ansible_facts.pip_cache.caches.sections).
          returned: always
          type: dict
        summary:
          description: One line for humans.
          returned: always
          type: str
          sample: "pip: 2 cache(s), 1.2 GiB on disk, 1.2 GiB reclaimable; uv: 1 cache(s), 310.0 MiB on disk, 12.0 MiB reclaimable"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils import options
from ansible_collections.pkgcache.fleet.plugins.module_utils.facts import PIP, exit_module


def main():
    module = AnsibleModule(
        argument_spec=options.argument_spec(options.USERS, options.ENVIRONMENT),
        supports_check_mode=True,
    )
    exit_module(module, [PIP])


if __name__ == "__main__":
    main()
