"""Figure 2: planning a cleanup against ``du -s ROOT``, and deleting the plan against ``rm -rf``.

Plan: A = ``Host.load`` + ``conda_clean.clean(host, targets, Policy(), check_mode=True)`` inside a
chroot of the fixture that also sees the machine's ``/proc`` (busy detection scans it, as on a
real host); B = ``du -s`` of the root prefix.

Delete: the plan is made once on the pristine fixture.  Each round then makes two fresh ``cp -a``
copies (hard links kept) outside the timed region; A = ``cleanup.execute(plans)`` on one
(its plans rebuilt untimed in that copy and checked to name exactly the pristine plan's paths),
B = ``rm -rf`` of the same paths on the other.  Both must leave none of the paths behind.

Targets: every cache category (``tempfiles`` lives in environments, outside ``execute(plans)``).
"""

import os
import shutil
from dataclasses import asdict

from ansible_collections.pkgcache.fleet.plugins.module_utils.cleanup import execute
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_clean import TARGETS, Policy, clean, plan_cache
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host

from bench import fixtures
from bench.facts import du_root
from bench.harness import Sample, alternate, from_pair, timed, timed_command
from condafab.chroot import in_host

CACHE_TARGETS = sorted(t for t, category in TARGETS.items() if category)
PLAN_TARGET = 1.0
DELETE_TARGET = 1.3


def _load_and_plan():
    host = Host.load(fixtures.USERS, [fixtures.ROOT])
    return clean(host, set(CACHE_TARGETS), Policy(), check_mode=True)


def _plan_timed():
    sample, result = timed(_load_and_plan)
    return {"sample": asdict(sample), "paths": result["paths"], "skipped": result["skipped_caches"]}


def _execute_timed(expected):
    """Rebuild the plan objects in this copy (untimed), then time their execution."""
    host = Host.load(fixtures.USERS, [fixtures.ROOT])
    verdicts = host.verdicts()
    policy = Policy()
    plans = [plan_cache(cache, [TARGETS[t] for t in CACHE_TARGETS], verdicts, policy, host.routes(cache))
             for cache in host.select_caches()]
    planned = [path for plan in plans for path in plan.paths]
    if sorted(planned) != sorted(expected):
        raise AssertionError("the plan in the copy differs from the pristine plan")
    sample, (removed, _freed, errors) = timed(execute, plans)
    if errors or sorted(removed) != sorted(expected):
        raise AssertionError("execute() removed %d of %d paths: %s" % (len(removed), len(expected), errors[:5]))
    return asdict(sample)


def _assert_gone(fsroot, paths):
    left = [p for p in paths if os.path.lexists(str(fsroot) + p)]
    if left:
        raise AssertionError("%d planned paths are still there, e.g. %s" % (len(left), left[0]))


def run(workdir, scale):
    fixture = fixtures.get(workdir, scale.packages, scale)
    size = "%d packages, %d files" % (fixture.packages, fixture.files)

    def plan_once():
        result = in_host(fixture.fsroot, _plan_timed, proc=True)
        if result["skipped"] or not result["paths"]:
            raise AssertionError("nothing planned (skipped caches: %s)" % result["skipped"])
        return result

    pristine = plan_once()
    paths = pristine["paths"]
    plan_pair = alternate(lambda: Sample(**plan_once()["sample"]), du_root(fixture), scale)

    copy_a, copy_b = fixture.home.parent / "copy-a", fixture.home.parent / "copy-b"

    def delete_ours():
        fixtures.copy_tree(fixture.fsroot, copy_a)
        sample = Sample(**in_host(copy_a, _execute_timed, paths))
        _assert_gone(copy_a, paths)
        return sample

    def delete_rm():
        fixtures.copy_tree(fixture.fsroot, copy_b)
        sample = timed_command(["rm", "-rf", "--"] + [str(copy_b) + p for p in paths])
        _assert_gone(copy_b, paths)
        return sample

    try:
        delete_pair = alternate(delete_ours, delete_rm, scale)
    finally:
        for copy in (copy_a, copy_b):
            shutil.rmtree(str(copy), ignore_errors=True)
    return [
        from_pair("clean: plan (load + check mode) vs du -s ROOT, %s" % size, plan_pair, PLAN_TARGET,
                  note="%d paths planned (targets: %s)" % (len(paths), ", ".join(CACHE_TARGETS))),
        from_pair("clean: execute(plan) vs rm -rf of the same %d paths" % len(paths), delete_pair, DELETE_TARGET,
                  note="each run on a fresh cp -a copy (hard links kept), copying untimed"),
    ]
