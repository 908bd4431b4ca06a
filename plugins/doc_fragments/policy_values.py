# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """How durations, sizes and free-space thresholds are written in every module's options
    (``options.duration``/``options.size`` options, read by ``options.parse_duration``,
    ``parse_size`` and ``parse_free_threshold``)."""

    DOCUMENTATION = r"""
options: {}
notes:
  - Durations are a number and a unit - V(s) seconds, V(m) minutes, V(h) hours, V(d) days, V(w)
    weeks (V(90s), V(30m), V(12h), V(7d), V(2w); V(1.5h) too). A bare number other than V(0) fails
    the task, since days and seconds are both plausible readings and the wrong one empties a cache.
  - Sizes are bytes with an optional binary unit - V(K), V(M), V(G), V(T), also written V(GB) or
    V(GiB) (V(500M), V(20G)); a bare number is bytes. A free-space threshold is a size or a
    percentage of the filesystem (V(10%)).
  - A value that does not read this way fails the task, naming the option, before anything is read
    or changed.
"""
