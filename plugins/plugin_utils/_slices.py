# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-host results of AWX job slices, and the merge that builds one report from them.

Each slice (the same playbook over its part of the inventory, run at the same time as the
others) writes one file per host of its play into a directory all slices share,
``<dir>/<host>.json`` (the name percent-quoted; a quoted name too long for a file name is cut
and made unique by its sha256), atomically: a merge running while a slice writes
reads a host's old result or its new one, never a part.  A file holds ``host``, ``active`` (still
in the slice's play), ``check_mode`` and ``view``, the host variables the report reads
(``fleet_report.host_view``), so the merged report is built from exactly what a single job over
every host would have read.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
from urllib.parse import quote

from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import write_atomic

SUFFIX = ".json"
NAME_BYTES = 180


def path_for(directory, host):
    name = quote(host, safe="")
    if len(name) > NAME_BYTES:
        name = name[:NAME_BYTES - 65] + "~" + hashlib.sha256(host.encode("utf-8")).hexdigest()
    return os.path.join(directory, name + SUFFIX)


def write(directory, views, active, check_mode):
    """One file per host of *views* (``[(host, view)]``); returns the paths written."""
    active = set(active)
    return [write_atomic(path_for(directory, host), json.dumps(
        {"host": host, "active": host in active, "check_mode": bool(check_mode), "view": view},
        sort_keys=True), keep_existing=False) for host, view in views]


def read(directory, hosts, warn):
    """``(views, active, check_mode)`` for *hosts* from the slices' files.  A host without a file
    (its slice did not get that far) has no data and counts as active, so it reads ``no_data``;
    a file that does not parse is skipped with a warning the same way."""
    views, active, check_mode = [], [], False
    for host in hosts:
        path = path_for(directory, host)
        try:
            with open(path, "rb") as handle:
                result = json.loads(handle.read().decode("utf-8"))
        except FileNotFoundError:
            warn("no slice wrote a result for %s to %s" % (host, directory))
            result = None
        except (OSError, ValueError) as exc:
            warn("%s is not a slice result (%s); host %s has no data" % (path, exc, host))
            result = None
        if not isinstance(result, dict) or result.get("host") != host or not isinstance(result.get("view"), dict):
            views.append((host, {}))
            active.append(host)
            continue
        views.append((host, result["view"]))
        if result.get("active"):
            active.append(host)
        check_mode = check_mode or bool(result.get("check_mode"))
    return views, active, check_mode
