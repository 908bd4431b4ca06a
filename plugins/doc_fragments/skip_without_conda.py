# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """``skip_without_conda``: a host with no conda is skipped, not failed (``options.SKIP_WITHOUT_CONDA``)."""

    DOCUMENTATION = r"""
options:
  skip_without_conda:
    description:
      - On a host with no conda installation, return C(skipped=true) with the reason instead of
        acting (or failing), so a play over a mixed fleet needs no hand-made groups. The
        collection's playbooks turn it on.
    type: bool
    default: false
"""
