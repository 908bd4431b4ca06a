"""``python -m bench [--quick] [--only NAME ...] [--workdir DIR] [--keep]``

Runs the benchmarks in a fixed order (fixtures built once are reused by later ones), prints the
Markdown table and writes it with the raw samples to ``bench/results/<timestamp>.{md,json}``.
Exit code 1 when a benchmark failed to run; misses of a target are results, not failures.
"""

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench import fixtures, harness

# Order matters: clean copies the main fixture before the curve builds the big ones (tmpfs is
# memory), and the RSS figure reuses the curve's largest tree.
BENCHMARKS = {
    "clean": "bench.clean",
    "backup": "bench.backup",
    "relocate": "bench.relocate",
    "facts": "bench.facts",
    "envs": "bench.envs",
    "rss": "bench.memory",
    "report": "bench.report",
    "fleet": "bench.fleet",
}
# These share the fixtures built in the workdir; every other benchmark gets a directory of its
# own, removed when it is done (tmpfs is memory).
SHARED_WORKDIR = {"clean", "facts", "envs", "rss", "fleet"}
USES_FIXTURES = {"clean", "facts", "envs", "rss"}
RESULTS = Path(__file__).resolve().parent / "results"
# Fixtures are millions of small files; on a memory filesystem building and measuring them is
# not dominated by the disk's journal.  --workdir picks another place.
MEMORY_FS = "/dev/shm"


def _default_workdir():
    base = MEMORY_FS if os.access(MEMORY_FS, os.W_OK) else None
    return tempfile.mkdtemp(prefix="pkgcache-bench-", dir=base)


def _fs_type(path):
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True).stdout.strip()


def _run_one(name, workdir, scale):
    """Rows of one benchmark; a module not written yet is a skip, a crash an error row."""
    module_name = BENCHMARKS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return [harness.skipped(name, "%s.py is not in bench/ yet" % module_name.split(".")[1])]
    own = workdir if name in SHARED_WORKDIR else workdir / name
    own.mkdir(exist_ok=True)
    try:
        return list(module.run(own, scale))
    except Exception as exc:  # pylint: disable=broad-except  # one broken benchmark must not hide the others
        traceback.print_exc()
        return [harness.failed(name, exc)]
    finally:
        if own != workdir:
            shutil.rmtree(str(own), ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="small trees, 10 hosts: under 2 minutes")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME",
                        help="run only this benchmark (repeatable): %s" % ", ".join(BENCHMARKS))
    parser.add_argument("--workdir", type=Path, help="where fixtures are built (default: a new temp dir, in memory)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir (fixtures) afterwards")
    args = parser.parse_args(argv)
    scale = harness.QUICK if args.quick else harness.FULL
    workdir = args.workdir or Path(_default_workdir())
    workdir.mkdir(parents=True, exist_ok=True)
    info = {"scale": str(scale), "started": harness.started_stamp(), "machine_start": harness.machine(),
            "workdir_fs": _fs_type(workdir), "runs": scale.runs, "warmup": scale.warmup}
    rows, started = [], time.perf_counter()
    chosen = [n for n in BENCHMARKS if not args.only or n in args.only]
    try:
        for index, name in enumerate(chosen):
            print("== %s" % name, file=sys.stderr, flush=True)
            begun = time.perf_counter()
            rows += _run_one(name, workdir, scale)
            if not args.keep and not USES_FIXTURES & set(chosen[index + 1:]):
                fixtures.drop_all(workdir)
            info.setdefault("benchmark_seconds", {})[name] = round(time.perf_counter() - begun, 1)
            print("== %s done in %.1f s" % (name, time.perf_counter() - begun), file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(str(workdir), ignore_errors=True)
    info["machine_end"] = harness.machine()
    info["seconds"] = round(time.perf_counter() - started, 1)
    path, text = harness.write_results(rows, info, RESULTS)
    print(text)
    print("%s; %.0f s in all" % (path, info["seconds"]))
    return 1 if any(harness.verdict(r) == "ERROR" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
