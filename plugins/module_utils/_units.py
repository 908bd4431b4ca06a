# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Durations, sizes and free-space thresholds as users write them in policies (``7d``, ``20G``, ``10%``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4}
_DURATION = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class PolicyError(ValueError):
    pass


def parse_duration(text):
    """``"7d"``, ``"12h"``, ``"30m"``, ``"90s"`` or a number of seconds."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", str(text))
    if not match:
        raise PolicyError("%r is not a duration (like 7d, 12h, 30m)" % text)
    return float(match.group(1)) * _DURATION.get(match.group(2) or "s")


def parse_size(text):
    """``"20G"``, ``"500M"``, ``"1024"`` (bytes; binary units)."""
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*$", str(text), re.I)
    if not match:
        raise PolicyError("%r is not a size (like 20G, 500M)" % text)
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_free_threshold(text):
    """``"10%"`` -> ("percent", 10.0); ``"5G"`` -> ("bytes", 5368709120)."""
    text = str(text).strip()
    if text.endswith("%"):
        try:
            value = float(text[:-1])
        except ValueError:
            raise PolicyError("%r is not a percentage" % text)
        if not 0 <= value <= 100:
            raise PolicyError("%r is not between 0%% and 100%%" % text)
        return ("percent", value)
    return ("bytes", parse_size(text))
