# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """``target_free`` and ``max_cache_size``: clean to a target (``options.TARGET``,
    applied by ``cleanup.Target``)."""

    DOCUMENTATION = r"""
options:
  target_free:
    description:
      - Clean to a target - remove only as much as it takes to leave this much free space on each
        cache's filesystem, in percent of the filesystem (V(20%)) or bytes (V(50G)).
      - Everything the other options make removable is planned first; then, per filesystem, those
        items of every selected cache on it are taken oldest-first by last use (the newest of the
        item's own modification time, the modification times of its files and links and the access
        times of its regular files), and
        taking stops as soon as the free space now available plus the bytes the items taken so far
        free (each inode once) reaches the target.
      - Items not taken are kept with the reason C(target met (...)). Each removed item carries its
        C(order) and the C(running_total_bytes) freed up to it; RV(target) sums up each filesystem.
        A target already met removes nothing.
      - On a filesystem mounted C(noatime) access times stay old, and modification times decide.
    type: str
  max_cache_size:
    description:
      - Clean to a target - remove, oldest-first as for O(target_free), only as much as it takes to
        bring each cache's on-disk size to at most this (V(50G), bytes).
      - With O(target_free) too, an item is taken while either target is not met.
    type: str
"""
