# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """``compact``: small results for large fleets (``options.COMPACT``, applied by ``cleanup.compact``)."""

    DOCUMENTATION = r"""
options:
  compact:
    description:
      - Return counts instead of per-item lists, so job events stay small on fleets of hundreds of hosts
        (AWX stores every event). Each entry of RV(caches) then has C(remove_count) and C(remove_bytes)
        instead of C(remove), and its C(keep) groups carry no C(paths). RV(removed) (the paths a real run
        removed), sizes, C(skipped) reasons and errors are kept in full, and so is the diff.
    type: bool
    default: false
"""
