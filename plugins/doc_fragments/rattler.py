# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """Where the environments that use rattler caches are looked for (``rattler_cache.SEARCH``)."""

    DOCUMENTATION = r"""
options:
  search_roots:
    description:
      - Directories searched for pixi workspaces (a directory holding C(.pixi/envs/<env>/conda-meta)); rattler keeps no
        list of its environments, so they are found by searching.
      - Null (the default) means the home of every selected user that exists (C(/) left out), each once. Symlinks are not
        followed.
      - Besides these, pixi global tools (C($PIXI_HOME/envs), default C(~/.pixi/envs)), detached environments under the
        cache root (C(<root>/envs/*/envs/*)) and the prefixes in each user's C(~/.conda/environments.txt) are always read.
    type: list
    elements: str
  search_depth:
    description:
      - How many directories below a search root a workspace may sit (V(0) is the root itself).
    type: int
    default: 4
  search_seconds:
    description:
      - How long the search may take. A search that stops early, or cannot read a directory or a record, makes the
        facts incomplete and makes cleaning skip every rattler cache, since a package could then look unused.
    type: int
    default: 60
  prefixes:
    description:
      - More environment prefixes (absolute paths) whose records protect what they use, such as pixi environments
        detached to a directory of their own (C(detached-environments) set to a path) or conda prefixes using a rattler
        cache.
    type: list
    elements: str
    default: []
"""
