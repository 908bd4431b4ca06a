"""Figures 1 and 4: the facts logic against ``du -s ROOT``, and how its time grows with the tree.

A = ``conda_facts.gather(users, roots=[ROOT])``, called directly inside a chroot of the fixture
(the records name in-host paths) and timed there; B = ``du -s`` of the same root prefix.  One
A/B pair per size of the scale curve; the main size gives figure 1, all sizes give the curve:
per-file time at each size and the least-squares slope of seconds against files.  "Files" are
the names (files and symlinks) in the fixture tree.
"""

import resource
from dataclasses import asdict

from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_facts import gather

from bench import fixtures
from bench.harness import Sample, alternate, from_pair, median, row, timed, timed_command
from condafab.chroot import in_host

FIGURE_TARGET = 1.0
# Per-file time at the largest size over that at the smallest: flat means close to 1 (fixed
# costs make small trees dearer per file, so anything super-linear shows up as > 1).
FLAT_TARGET = 1.25


def _gather_timed(root):
    sample, facts = timed(gather, fixtures.USERS, roots=[root])
    return {"sample": asdict(sample), "totals": facts["totals"], "warnings": facts["warnings"],
            # Peak RSS of this process and of the largest walker it forked (kB; see bench.memory).
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "walker_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}


def gather_in(fixture):
    """One timed ``gather`` in the fixture (its result dict); fails unless it saw the whole cache
    as built."""
    result = in_host(fixture.fsroot, _gather_timed, fixtures.ROOT)
    totals = result["totals"]
    if result["warnings"] or totals["extracted"] != fixture.extracted or totals["unused_packages"] != fixture.orphans:
        raise AssertionError("gather() did not see the fixture as built: %s %s" % (totals, result["warnings"]))
    return result


def measure_facts(fixture):
    return Sample(**gather_in(fixture)["sample"])


def du_root(fixture):
    return lambda: timed_command(["du", "-s", str(fixture.root)])


def least_squares(xs, ys):
    """``(slope, intercept)`` of the line through ``(xs, ys)``."""
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / var
    return slope, mean_y - slope * mean_x


def run(workdir, scale):
    sizes = sorted(set(scale.curve) | {scale.packages})
    rows, points = [], []
    for packages in sizes:
        fixture = fixtures.get(workdir, packages, scale)
        pair = alternate(lambda f=fixture: measure_facts(f), du_root(fixture), scale)
        point = (fixture.files, median([s.wall for s in pair.a]), median([s.cpu for s in pair.a]))
        points.append(point)
        label = "facts: gather() vs du -s ROOT, %d packages, %d files" % (packages, fixture.files)
        note = "%.2f µs/file wall, %.2f µs/file CPU" % (point[1] / point[0] * 1e6, point[2] / point[0] * 1e6)
        rows.append(from_pair(label, pair, FIGURE_TARGET, note=note))
        if packages not in (scale.packages, scale.rss_packages):
            fixtures.drop(workdir, packages, scale)
    rows.append(curve_row(points, scale))
    return rows


def curve_row(points, scale):
    """Flatness is judged on CPU time per file (the wall clock moves with the machine's load);
    the wall-clock slope and per-file times are reported next to it."""
    files = [p[0] for p in points]
    slopes = [least_squares(files, [p[column] for p in points])[0] * 1e6 for column in (1, 2)]
    per_file = ", ".join("%d: %.2f/%.2f" % (f, wall / f * 1e6, cpu / f * 1e6) for f, wall, cpu in points)
    first, last = points[0][2] / points[0][0], points[-1][2] / points[-1][0]
    return row("scale curve %s packages: CPU time per file, largest / smallest tree" % "→".join(map(str, scale.curve)),
               last * 1e6, first * 1e6, FLAT_TARGET, ratio=last / first, unit="µs/file",
               note="least-squares slope of seconds vs files: %.3f µs/file wall, %.3f µs/file CPU; "
                    "per file (files: wall/CPU µs): %s" % (slopes[0], slopes[1], per_file))
