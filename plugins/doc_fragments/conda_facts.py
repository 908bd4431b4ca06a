# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """What the conda cache facts cover: extra roots (section ``roots``, which conda_env_facts
    uses alone), environment sizes, per-package lists (``options.CONDA_FACTS``)."""

    DOCUMENTATION = r"""
options:
  env_sizes:
    description:
      - Also walk every environment and report its on-disk size (expensive on large hosts).
    type: bool
    default: false
  list_packages:
    description:
      - Include per-package lists (unused packages, in-use packages C(conda clean) would remove).
    type: bool
    default: true
notes:
  - Caches with 64 or more items are sized by forked helper processes, one per CPU the module
    may run on (at most four in all, this process included), while this process reads the
    environments' records. Each helper walks its share and exits; results are the same as a
    walk by one process.
"""

    # roots alone: the modules that find installations as the facts do (conda_env_facts).
    ROOTS = r"""
options:
  roots:
    description:
      - Conda root prefixes to include besides the discovered ones.
    type: list
    elements: path
    default: []
"""
