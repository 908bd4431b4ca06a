# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``conda_pkgs_backup`` really returns, recorded from runs of the module on a condafab host,
for the report tests: a report fed hand-written results once read a key the module had renamed.

``backup_results.json`` holds the recorded runs, fixture paths rewritten to how a host shows them
(``/opt/conda/...``, the backup under ``/backup``).  Regenerate it after a change to the
module's result, from ``tests/`` with the collection linked (``make link``)::

    PYTHONPATH=.:../.build/link python -m unit.plugins.plugin_utils.backup_results
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from unit.plugins.modules.backup_host import build_host, run_module

DATA = Path(__file__).with_name("backup_results.json")
TARBALL = (".conda", ".tar.bz2")


def corrupt_one_verified_tarball(cache):
    """Flip the last byte of the first tarball that has a repodata record (same size), so the
    next run finds its sha256 wrong.  Returns its file name."""
    for fn in sorted(n for n in os.listdir(cache) if n.endswith(TARBALL)):
        dist = fn[: -len(".conda")] if fn.endswith(".conda") else fn[: -len(".tar.bz2")]
        if os.path.exists(os.path.join(cache, dist, "info", "repodata_record.json")):
            path = Path(cache, fn)
            data = bytearray(path.read_bytes())
            data[-1] ^= 0xFF
            path.write_bytes(bytes(data))
            return fn
    raise AssertionError("the fixture has no tarball with a repodata record")


def _relocated(value, replacements):
    if isinstance(value, dict):
        return dict((k, _relocated(v, replacements)) for k, v in value.items())
    if isinstance(value, list):
        return [_relocated(v, replacements) for v in value]
    if isinstance(value, str):
        for old, new in replacements:
            value = value.replace(old, new)
    return value


def record(workdir: Path) -> dict:
    """``{"present": ..., "mismatch_failed": ...}``: a first backup of the fixture, then a run with
    one tarball no longer matching its record and ``fail_on_mismatch: true``."""
    host = build_host(workdir)
    args = dict(dest=host["dest"], roots=[host["root"]], host_id="h1")
    results = {"present": run_module(workdir, **args)}
    corrupt_one_verified_tarball(host["cache"])
    results["mismatch_failed"] = run_module(workdir, fail_on_mismatch=True, **args)
    return _relocated(results, [(host["dest"], "/backup"), (str(workdir / "host"), "")])


def load() -> dict:
    return json.loads(DATA.read_text())


def main():
    with tempfile.TemporaryDirectory() as workdir:
        results = record(Path(workdir))
    DATA.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    sys.stdout.write("wrote %s\n" % DATA)


if __name__ == "__main__":
    main()
