# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for ``pkgcache.fleet.cache_clean``: runs the module; a managed host whose Python is too old
to start it gets a message naming its version (see ``plugin_utils/_managed_python.py``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.pkgcache.fleet.plugins.plugin_utils._managed_python import ModuleAction


class ActionModule(ModuleAction):
    pass
