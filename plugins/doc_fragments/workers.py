# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """``workers``: how much runs in parallel (``options.WORKERS``, checked by ``options.check_workers``)."""

    DOCUMENTATION = r"""
options:
  workers:
    description:
      - Files read and written in parallel. At least V(1); a smaller number fails the task before
        anything is read.
    type: int
    default: 2
"""
