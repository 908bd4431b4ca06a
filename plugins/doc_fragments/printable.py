# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """How every module returns names and text it read from disk (file names, configs, records)."""

    DOCUMENTATION = r"""
options: {}
notes:
  - Every string in the result (paths, reasons, warnings, messages) is valid UTF-8. File names and
    config files are bytes; a byte that is not UTF-8 is returned as C(\xNN) (two lower-case hex digits),
    any other lone surrogate as C(\uNNNN), and a backslash as C(\\), so the escaping is unambiguous.
    The raw name is the string with C(\\) read as a backslash and each C(\xNN) as that byte. On the host the
    module works on the raw bytes; a file with such bytes is read and warned about, never a failure.
"""
