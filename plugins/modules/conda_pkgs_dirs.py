#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: conda_pkgs_dirs
short_description: Declare conda's pkgs_dirs and move a package cache to another disk
version_added: 0.1.0
description:
  - Sets the C(pkgs_dirs) list of one conda config file (the installation's C(.condarc), a user's
    C(~/.condarc), or an explicit file) and creates the cache directories it names the way conda
    expects them, with C(urls.txt) and C(urls), so conda writes to them and C(conda clean) does not
    skip them.
  - Only the C(pkgs_dirs) key changes. Other keys, their order, comments and conda's C(#!final),
    C(#!top), C(#!bottom) markers survive. The file is replaced atomically and keeps its owner and mode.
  - The effective configuration is resolved the way conda resolves it (every config file, C(#!final),
    C(CONDA_PKGS_DIRS)) before and after the change. The task fails when conda would not use the
    requested entries, and warns about entries other files still contribute.
  - With O(migrate=true) the content of the previous first cache moves into the new first cache. On one
    filesystem it is renamed; across filesystems it is copied into a staging directory keeping hard links
    inside the cache, verified (sizes of every file, sha256 of every tarball), put in place, the config is
    switched, and only then is the old copy removed through the collection's safe removal path.
  - A failure before the switch leaves config and old cache untouched and removes the partial copy.
  - The move is journaled in C(<new cache>/.pkgcache-relocate/journal.json), rewritten atomically before each
    step. It records the config file, the config text before and after (sha256), the move and the step
    reached. A run killed at any step (power loss, SIGKILL, a lost connection) is recovered by running the
    same task again. Killed while copying, the partial copy is removed and the move starts over. Killed while
    the copy is renamed into place, the config written, or the old copy removed, the rest is finished.
    In every case the config is the old or the new text, and every package is whole in the cache it names.
  - A journal left by a different task (another config file, another C(pkgs_dirs) text, another old cache,
    a config changed since, or other O(migrate) or O(link_old)) is not adopted. The task fails, names the
    interrupted move and the step, and asks to run the task that started it again. A journal whose copy never
    replaced anything says the staging directory may also be removed by hand. Once only the old copy's removal
    is left, a task differing only in O(migrate) or O(link_old) goes on and warns where the old copy is.
  - A staging directory without a journal holds nothing that is not also elsewhere. The next run removes it.
  - Extracted packages hard-linked into environments do not free space on the old disk when moved; the
    result reports the bytes the old filesystem really gains, counting each inode once and only when no
    link to it remains.
  - Refuses while a process uses the installation or the old cache, when the destination is inside the
    old cache or an environment, when the new filesystem lacks room (with the numbers), when the destination,
    the old cache's directory or the config's directory cannot be written (read-only mount, immutable flag),
    and when a soft-linked environment points into the old cache unless O(link_old=true). These refusals
    come from the plan, so check mode fails with the same message as the real run.
  - A failed run reports as C(changed) only what stayed changed (a cache directory it created, a move or
    config it could not undo), not what it had planned.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.environment.conda
  - pkgcache.fleet.printable
  - pkgcache.fleet.skip_without_conda
attributes:
  check_mode:
    support: full
    description: Returns the plan (config change, directories to create, the move and its byte counts).
  diff_mode:
    support: full
    description: Shows the config file before and after, and the move plan.
options:
  root:
    description: The conda installation (root prefix) whose configuration is changed.
    type: path
    required: true
  scope:
    description:
      - Which config file to write. V(system) is C(<root>/.condarc); V(user) is the C(~/.condarc)
        of O(user).
      - Ignored when O(condarc) is given.
    type: str
    choices: [system, user]
    default: system
  user:
    description:
      - The login whose C(~/.condarc) is written (O(scope=user)), and whose view of the configuration
        is checked. Default is root.
      - A name the passwd database does not have fails the task, naming it, before anything is read
        or changed; so does an unknown O(owner) or O(group).
    type: str
  condarc:
    description:
      - An explicit config file to write instead of the scope's. It must be one conda reads for this
        installation and user.
    type: path
  pkgs_dirs:
    description:
      - The cache directories, in order. The first one receives downloads.
      - Written as given; C(~) and C($VARS) are expanded for O(user) when checking the effective value.
      - With O(state=present) each entry must be absolute once C(~) and C($VARS) are expanded for O(user)
        (root for the system scope); a relative entry would mean whatever directory conda runs in, so it is
        refused before anything changes.
      - With O(state=absent), the entries to remove from the file's list.
    type: list
    elements: str
    required: true
  state:
    description: V(present) makes the file's list exactly O(pkgs_dirs); V(absent) removes those entries.
    type: str
    choices: [present, absent]
    default: present
  migrate:
    description:
      - Move the content of the previous first cache into the new first cache.
      - With O(scope=user), a cache other users' conda still lists is refused (the move would take it from
        them); move it with O(scope=system) instead.
    type: bool
    default: false
  link_old:
    description:
      - Leave a symlink at the old cache path pointing to the new one. Soft-linked environments need
        it to keep working.
    type: bool
    default: false
  extracted:
    description:
      - What happens to extracted packages in a move across filesystems. V(move) copies them.
        V(drop) leaves only the tarball in the new cache (conda re-extracts on demand); packages
        without a tarball and packages a soft-linked environment uses are always moved.
    type: str
    choices: [move, drop]
    default: move
  owner:
    description: Owner of created cache directories. Default is O(user) for O(scope=user), else the running user.
    type: str
  group:
    description: Group of created cache directories. Default is the group of O(user) for O(scope=user).
    type: str
  mode:
    description: Permissions of created cache directories, octal (V('0775')).
    type: raw
"""

EXAMPLES = r"""
- name: Move the shared cache to the data disk, keeping the old path working
  pkgcache.fleet.conda_pkgs_dirs:
    root: /opt/conda
    pkgs_dirs: [/data/conda/pkgs]
    migrate: true
    link_old: true
    mode: "0775"
    group: conda

- name: Give alice her own cache first, the shared one second
  pkgcache.fleet.conda_pkgs_dirs:
    root: /opt/conda
    scope: user
    user: alice
    pkgs_dirs: ["~/.conda/pkgs", /opt/conda/pkgs]

- name: Move across disks, carrying only tarballs
  pkgcache.fleet.conda_pkgs_dirs:
    root: /opt/conda
    pkgs_dirs: [/scratch/pkgs]
    migrate: true
    link_old: true
    extracted: drop
"""

RETURN = r"""
condarc:
  description: The config file written (or that would be).
  returned: always
  type: str
pkgs_dirs:
  description: The effective pkgs_dirs after the change, as conda resolves them for O(user).
  returned: always
  type: list
  elements: str
pkgs_dirs_before:
  description: The effective pkgs_dirs before the change.
  returned: always
  type: list
  elements: str
sources:
  description: The config files (and variables) that contribute to the effective pkgs_dirs.
  returned: always
  type: list
  elements: str
config_changed:
  description: Whether the config file's content changes.
  returned: always
  type: bool
created:
  description: Cache directories created (or to create).
  returned: always
  type: list
  elements: str
migration:
  description: The move, or null when nothing moves.
  returned: always
  type: dict
  contains:
    source:
      description: The old cache.
      type: str
    dest:
      description: The new cache.
      type: str
    method:
      description: C(rename) (one filesystem) or C(copy).
      type: str
    entries:
      description: Top-level cache entries carried over.
      type: int
    dropped:
      description: Extracted packages not carried (O(extracted=drop)).
      type: list
      elements: str
    softlinked_envs:
      description: Environments linked by symlinks into the old cache, with the packages they use.
      type: dict
    link_old:
      description: Whether the old path becomes a symlink to the new cache.
      type: bool
    cache_disk_bytes:
      description: On-disk size of the old cache, each inode once.
      type: int
    copy_bytes:
      description: Bytes the copy needs on the new filesystem (0 for a rename).
      type: int
    old_fs_gain_bytes:
      description: Bytes the old filesystem gains (inodes with no link left; 0 for a rename).
      type: int
    held_by_environments_bytes:
      description: Bytes of the old cache that stay allocated because environments hard-link them.
      type: int
recovery:
  description:
    - What this run does about a move an earlier run left unfinished in the new cache, or null.
    - C(step) is the journal's step (C(copy), C(place), C(switch), C(remove)), or null for a staging
      directory without a journal; C(action) says whether the move is rolled back and started over, or finished.
  returned: always
  type: dict
left_behind:
  description:
    - Caches some user's conda lists before the change and no user's would after it, that still hold packages
      (the move's own source excluded). Nothing moves or cleans them afterwards; each is also a warning and a
      line of the diff.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The cache.
      type: str
    users:
      description: Accounts whose conda lists it now.
      type: list
      elements: str
    disk_bytes:
      description: On-disk size, each inode once.
      type: int
msg:
  description: One-line summary.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pkgcache.fleet.plugins.module_utils import options
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import is_prefix
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_relocate import Request, apply, build_plan, condarc_path
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_relocate_move import run_module
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results


def request_from(params):
    """Names to accounts and ids; the file the scope means."""
    viewer = options.select_user(params["user"]) if params["user"] else options.superuser()
    path = condarc_path(params["scope"], params["root"], viewer.home if params["user"] else None, params["condarc"])
    owned = params["scope"] == "user" and not params["condarc"]
    uid, gid, mode = options.new_directory(params, viewer if owned else None)
    env = options.shell_environment(params["environment"])
    return Request(params["root"], path, viewer, options.select_homes([]), params["pkgs_dirs"], params["state"],
                   params["migrate"], params["link_old"], params["extracted"], uid, gid, mode, env)


def main():
    module = AnsibleModule(
        argument_spec=options.argument_spec(
            options.ENVIRONMENT, options.SKIP_WITHOUT_CONDA, options.NEW_DIRECTORY,
            root=dict(type="path", required=True),
            scope=dict(type="str", choices=["system", "user"], default="system"),
            user=dict(type="str"),
            condarc=dict(type="path"),
            pkgs_dirs=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            migrate=dict(type="bool", default=False),
            link_old=dict(type="bool", default=False),
            extracted=dict(type="str", choices=["move", "drop"], default="move"),
        ),
        required_if=[("scope", "user", ("user", "condarc"), True)],
        supports_check_mode=True,
    )
    if module.params["skip_without_conda"] and not is_prefix(module.params["root"]):
        Results(module).exit(changed=False, skipped=True, msg=options.NO_CONDA)
    run_module(module, lambda params: build_plan(request_from(params)), apply, now_key="pkgs_dirs")


if __name__ == "__main__":
    main()
