#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: pip_cache_dir
short_description: Declare where pip's or uv's cache lives and move it to another disk
version_added: 0.1.0
description:
  - Sets the cache directory of pip (C(cache-dir) in the C([global]) section of a C(pip.conf)) or uv
    (the top-level C(cache-dir) of a C(uv.toml)) for one user or the whole host, or the C(PIP_CACHE_DIR) or
    C(UV_CACHE_DIR) variable of an environment file.
  - Only that key changes. Every other line, comment and section of the file stays as it was; the file is
    replaced atomically and keeps its owner and mode.
  - The location is then resolved the way the tool resolves it for O(user), before and after the change. pip
    reads its config files in its own order, and each command (C(install), C(download), C(wheel), C(cache))
    applies its own section over C([global]), then C(PIP_*) variables. uv reads C(UV_CACHE_DIR), then the
    user's C(uv.toml), then the system's. The session variables of C(/etc/environment) and O(environment)
    count too. The task fails, naming it, when a setting of higher precedence would keep the tool elsewhere.
  - With O(migrate=true) the content of the previous cache moves into the new one with conda_pkgs_dirs's
    mover. On one filesystem it is renamed; across filesystems it is copied into a staging directory in the
    new cache, verified (size and sha256 of every file), put in place, the file is switched, the location is
    resolved again, and only then is the old copy removed. The move is journaled in
    C(<new cache>/.pkgcache-relocate/journal.json); a run killed at any step is rolled back or finished by
    running the same task again.
  - uv's own cache lock (C(.lock), flock) is held exclusively on the old cache for the whole move; a cache
    a running uv holds is refused.
  - A user's cache is moved, and the file written, with the credentials of whoever the file belongs to (the
    user, for O(scope=user)). The new directory is made for them. A cache that is not theirs to give, a cache
    other users also resolve (with O(scope=user)), a cache a process is using, a destination that already
    holds files, or a new filesystem without room for the copy is refused before anything changes, so check
    mode fails as the real run would.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.environment.pip
  - pkgcache.fleet.printable
attributes:
  check_mode:
    support: full
    description: Returns the plan (the file's change, the directory to create, the move and its byte counts).
  diff_mode:
    support: full
    description: Shows the file before and after, and the move plan.
options:
  tool:
    description: Whose cache.
    type: str
    choices: [pip, uv]
    default: pip
  scope:
    description:
      - Which file is written. V(user) is C(~/.config/pip/pip.conf) or C(~/.config/uv/uv.toml) of O(user)
        (C(XDG_CONFIG_HOME) from O(environment) is honoured). V(system) is C(/etc/pip.conf) or
        C(/etc/uv/uv.toml). V(environment) sets C(PIP_CACHE_DIR) or C(UV_CACHE_DIR) in O(env_file).
    type: str
    choices: [user, system, environment]
    default: user
  user:
    description:
      - The login whose file is written (O(scope=user)) and whose view of the location is checked.
        Default is root.
    type: str
  cache_dir:
    description:
      - The new cache directory, an absolute path. Required with O(state=present).
    type: path
  state:
    description:
      - V(present) sets the location to O(cache_dir). V(absent) removes the file's setting; the tool then
        falls back to what lower-precedence settings or its default say.
    type: str
    choices: [present, absent]
    default: present
  migrate:
    description: Move the content of the cache the tool used before into the one it uses after.
    type: bool
    default: false
  link_old:
    description: Leave a symlink at the old cache path pointing to the new one, instead of removing it.
    type: bool
    default: false
  env_file:
    description:
      - The file O(scope=environment) writes. C(/etc/environment) is read by pam_env for ssh, su and console
        logins. A file ending in C(.sh), such as C(/etc/profile.d/pip-cache.sh), gets C(export NAME="value")
        lines and applies to login shells only.
    type: path
    default: /etc/environment
  owner:
    description: Owner of the created cache directory. Default is whoever the written file belongs to.
    type: str
  group:
    description: Group of the created cache directory.
    type: str
  mode:
    description: Permissions of the created cache directory, octal (V('0700')).
    type: raw
"""

EXAMPLES = r"""
- name: Move alice's pip cache to the data disk
  pkgcache.fleet.pip_cache_dir:
    user: alice
    cache_dir: /data/pip-cache/alice
    migrate: true

- name: One uv cache for the host, in /etc/uv/uv.toml
  pkgcache.fleet.pip_cache_dir:
    tool: uv
    scope: system
    cache_dir: /data/uv-cache
    migrate: true

- name: PIP_CACHE_DIR for every session
  pkgcache.fleet.pip_cache_dir:
    scope: environment
    cache_dir: /data/pip-cache
"""

RETURN = r"""
tool:
  description: V(pip) or V(uv).
  returned: always
  type: str
config:
  description: The file written (or that would be).
  returned: always
  type: str
config_changed:
  description: Whether the file's content changes.
  returned: always
  type: bool
cache_dir:
  description: The cache directory the tool resolves after the change (null when its commands disagree).
  returned: always
  type: str
cache_dir_before:
  description: The cache directory the tool resolved before the change.
  returned: always
  type: str
sources:
  description: For each command (pip's V(install), V(download), V(wheel), V(cache); uv's V(cache)), the setting
    that decides its cache directory after the change.
  returned: always
  type: dict
created:
  description: Cache directories created (or to create).
  returned: always
  type: list
  elements: str
migration:
  description: The move (as conda_pkgs_dirs returns it), or null when nothing moves.
  returned: always
  type: dict
recovery:
  description: What this run does about a move an earlier run left unfinished, or null.
  returned: always
  type: dict
msg:
  description: One-line summary.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.pkgcache.fleet.plugins.module_utils import options
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_relocate_move import run_module
from ansible_collections.pkgcache.fleet.plugins.module_utils.pip_relocate import Request, apply, build_plan


def request_from(params):
    """Names to accounts and ids."""
    viewer = options.select_user(params["user"]) if params["user"] else options.superuser()
    accounts = options.select_homes([])
    uid, gid, mode = options.new_directory(params)
    return Request(params["tool"], params["scope"], viewer, [(a.uid, a.home) for a in accounts],
                   params["cache_dir"], params["state"], params["migrate"], params["link_old"], params["env_file"],
                   uid, gid, mode, options.shell_environment(params["environment"]),
                   [a for a in accounts if a.uid != viewer.uid])


def main():
    module = AnsibleModule(
        argument_spec=options.argument_spec(
            options.ENVIRONMENT, options.NEW_DIRECTORY,
            tool=dict(type="str", choices=["pip", "uv"], default="pip"),
            scope=dict(type="str", choices=["user", "system", "environment"], default="user"),
            user=dict(type="str"),
            cache_dir=dict(type="path"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            migrate=dict(type="bool", default=False),
            link_old=dict(type="bool", default=False),
            env_file=dict(type="path", default="/etc/environment"),
        ),
        required_if=[("state", "present", ("cache_dir",))],
        supports_check_mode=True,
    )
    run_module(module, lambda params: build_plan(request_from(params)), apply)


if __name__ == "__main__":
    main()
