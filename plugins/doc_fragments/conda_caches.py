# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """``roots`` and ``pkgs_dirs``: which conda caches a module works on (``options.CONDA_CACHES``)."""

    DOCUMENTATION = r"""
options:
  roots:
    description:
      - Only the caches of these installations (root prefixes). Default is every discovered one.
    type: list
    elements: path
    default: []
  pkgs_dirs:
    description:
      - Only these caches. Each must be a known cache or contain C(urls.txt) or C(urls).
    type: list
    elements: path
    default: []
"""
