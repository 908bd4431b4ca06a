"""What every benchmark shares: the run's scale, alternating A/B timing, result rows, the report.

A benchmark module exposes ``run(workdir, scale) -> list[dict]``; each dict is one row with the
keys ``figure``, ``a``, ``b``, ``ratio``, ``target`` (see :func:`row`).  ``scale`` is a
:class:`Scale`; ``str(scale)`` is ``"quick"`` or ``"full"``.
"""

import json
import os
import platform
import resource
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path


@dataclass(frozen=True)
class Scale:
    """How big and how often: fixture sizes, the scale curve, fleet sizes, repetitions."""

    name: str
    packages: int  # the main fixture (facts, clean)
    curve: tuple  # package counts of the scale curve
    rss_packages: int  # fixture for the peak-RSS figure (~1M files in full mode)
    hosts: tuple  # fleet sizes
    files: int = 100  # payload files per package
    envs: int = 10
    seed: int = 1
    runs: int = 5  # timed runs of each of A and B; the median is reported
    warmup: int = 1  # untimed runs of each before those
    factor: float = 1.0  # for modules that size their own fixtures: full = 1.0

    @property
    def quick(self):
        return self.name == "quick"

    def __str__(self):
        return self.name

    # A scale multiplies like its factor, so ``int(400 * scale)`` sizes a module's own fixture.
    def __float__(self):
        return float(self.factor)

    def __mul__(self, other):
        return self.factor * other

    __rmul__ = __mul__


QUICK = Scale("quick", packages=250, curve=(250, 500, 1000), rss_packages=1000, hosts=(10,), factor=0.05)
FULL = Scale("full", packages=2000, curve=(250, 500, 1000, 2000, 4000), rss_packages=5000, hosts=(10, 50, 200))


@dataclass(frozen=True)
class Sample:
    """One timed run: wall-clock seconds, and CPU seconds (user + system) of the work itself.

    On a busy machine the wall-clock ratio moves with the neighbours' load; the CPU ratio much
    less, so both are reported.  ``cpu`` is None where the work runs out of our sight.
    """

    wall: float
    cpu: float = None


def _sample(value):
    return value if isinstance(value, Sample) else Sample(float(value))


@dataclass
class Pair:
    """Samples of A and B, taken alternately (A, B, A, B, ...) after the warm-up."""

    a: list = field(default_factory=list)
    b: list = field(default_factory=list)

    @property
    def ratio(self):
        return median([s.wall for s in self.a]) / median([s.wall for s in self.b])

    @property
    def cpu_ratio(self):
        if any(s.cpu is None for s in self.a + self.b):
            return None
        return median([s.cpu for s in self.a]) / median([s.cpu for s in self.b])


def median(samples):
    return statistics.median(samples)


def alternate(measure_a, measure_b, scale):
    """Call ``measure_a``/``measure_b`` in turns; each returns what it measured itself (a
    :class:`Sample` or plain seconds), so that setup such as copying a tree or forking into a
    chroot stays outside the timed region."""
    pair = Pair()
    for index in range(scale.warmup + scale.runs):
        sample_a = _sample(measure_a())
        sample_b = _sample(measure_b())
        if index >= scale.warmup:
            pair.a.append(sample_a)
            pair.b.append(sample_b)
    return pair


def _cpu_self():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _cpu_children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(func, *args, **kwargs):
    """``(Sample, result)`` of one call in this process (CPU counts this process and the
    children it waited for during the call)."""
    cpu, start = _cpu_self() + _cpu_children(), time.perf_counter()
    result = func(*args, **kwargs)
    wall = time.perf_counter() - start
    return Sample(wall, _cpu_self() + _cpu_children() - cpu), result


def timed_command(argv, **kwargs):
    """One command, start to exit (it must succeed; output discarded)."""
    cpu, start = _cpu_children(), time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return Sample(time.perf_counter() - start, _cpu_children() - cpu)


def row(figure, a, b, target, ratio=None, unit="s", check="ratio", note="", samples=None):
    """One result.  ``check="ratio"`` passes when ``ratio <= target``; ``check="a"`` when
    ``a <= target`` (absolute limits such as peak memory, in ``unit``)."""
    data = {"figure": figure, "a": a, "b": b, "ratio": ratio, "target": target, "unit": unit,
            "check": check, "note": note}
    if samples is not None:
        data["samples"] = {"a": [asdict(x) for x in samples.a], "b": [asdict(x) for x in samples.b]}
    return data


def from_pair(figure, pair, target, note=""):
    """A timing row: medians of A and B (wall clock), their ratio, and the CPU-time ratio."""
    cpu = pair.cpu_ratio
    if cpu is not None:
        note = "CPU-time ratio %.3f (%s vs %s); %s" % (
            cpu, _fmt(median([s.cpu for s in pair.a]), "s"), _fmt(median([s.cpu for s in pair.b]), "s"), note)
    return row(figure, median([s.wall for s in pair.a]), median([s.wall for s in pair.b]), target,
               ratio=pair.ratio, note=note.rstrip("; "), samples=pair)


def skipped(figure, why):
    return row(figure, None, None, None, check="skip", note=why)


def failed(figure, exc):
    """A row for a measurement that could not be made; the run's exit code reports it."""
    return row(figure, None, None, None, check="error", note="ERROR: %s: %s" % (type(exc).__name__, exc))


def target_value(target):
    """Targets from other modules may come as numbers or as text like ``"<= 1.3"``/``"≤ 1.3"``."""
    if target is None or isinstance(target, (int, float)):
        return target
    return float(str(target).replace("≤", "").replace("<=", "").replace("x", "").strip())


def verdict(result):
    """``pass``, ``miss`` or ``-`` (nothing to judge) for one row."""
    limit = target_value(result.get("target"))
    check = result.get("check", "ratio")
    value = result.get("a") if check == "a" else result.get("ratio")
    if check == "error":
        return "ERROR"
    if check == "skip" or limit is None or value is None:
        return "-"
    return "pass" if value <= limit else "miss"


def _fmt(value, unit):
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if unit == "s":
        return "%.3f s" % value if value >= 0.1 else "%.2f ms" % (value * 1000)
    return "%.4g %s" % (value, unit) if unit else "%.4g" % value


def _fmt_target(result):
    limit = target_value(result.get("target"))
    if limit is None:
        return "-"
    if result.get("check") == "a":
        return "≤ %s" % _fmt(limit, result.get("unit", "s"))
    return "≤ %g" % limit


def machine():
    """What the numbers depend on: cores, load (now), interpreter, kernel."""
    return {
        "cores": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def markdown(rows, info):
    lines = [
        "# pkgcache.fleet benchmarks (%s, %s)" % (info["scale"], info["started"]),
        "",
        "Machine: %(cores)s cores, Python %(python)s, kernel %(kernel)s." % info["machine_start"],
        "Load average (1/5/15 min): %s at start, %s at end.  Fixtures on %s; A/B alternated, "
        "median of %d runs after %d warm-up." % (
            " / ".join(map(str, info["machine_start"]["loadavg"])),
            " / ".join(map(str, info["machine_end"]["loadavg"])),
            info["workdir_fs"], info["runs"], info["warmup"]),
        "",
        "| figure | A | B | ratio | target | result |",
        "|---|---|---|---|---|---|",
    ]
    for result in rows:
        unit = result.get("unit", "s")
        ratio = result.get("ratio")
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            result["figure"], _fmt(result.get("a"), unit), _fmt(result.get("b"), unit),
            "-" if ratio is None else "%.3f" % ratio, _fmt_target(result), verdict(result)))
    notes = [(r["figure"], r["note"]) for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes:", ""] + ["- **%s**: %s" % note for note in notes]
    lines.append("")
    return "\n".join(lines)


def write_results(rows, info, results_dir):
    """``<timestamp>.md`` and ``<timestamp>.json`` in ``results_dir``; returns the Markdown path."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = info["started"].replace(":", "").replace("-", "")
    text = markdown(rows, info)
    (results_dir / (stem + ".md")).write_text(text)
    for result in rows:
        result["result"] = verdict(result)
    (results_dir / (stem + ".json")).write_text(json.dumps({"info": info, "rows": rows}, indent=1, default=str) + "\n")
    return results_dir / (stem + ".md"), text


def started_stamp():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
