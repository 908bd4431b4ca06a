# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quarantine and repair of what :mod:`conda_integrity` found damaged in a package cache.

Nothing is deleted: a damaged entry is *moved* into ``<pkgs_dir>/.quarantine/<UTC stamp>/``
(the same filesystem, so a rename) and recorded in that directory's ``quarantine.json`` with
its findings.  conda no longer sees it: it looks for packages at the top of the cache only.

Repair re-extracts a damaged package from its tarball once the tarball is *verified* (its
sha256, else md5, as recorded in the dist's ``repodata_record.json`` or ``urls.txt``):

- ``.tar.bz2`` is extracted here with ``tarfile``: every member must stay inside the package
  (no absolute name, no ``..``, a symlink whose target stays inside, a hard link to a file
  extracted before, no device or FIFO); nothing is written through a link; the new directory is
  checked in ``full`` mode against its own ``info/paths.json`` before it replaces the old one.
- ``.conda`` holds zstd-compressed tars and zstd is not in Python's standard library: the
  package is quarantined and its verified tarball left in place, from which conda extracts it
  again when an environment next needs it ("needs conda").
- A damaged tarball is quarantined; when a backup store (``conda_pkgs_backup``'s ``dest``) holds
  an intact object with the recorded sha256, the tarball is copied back from it (a plain read
  of that path, as the cache's owner).

An extracted package a soft-linked environment points into is never quarantined without being
repaired in the same step: moving it would break the environment further.

Everything in one cache runs with its owner's credentials (``_authority``), under the cache lock
the cleanup pipeline takes (``_removal.CacheDir``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import posixpath
import stat
import tarfile

from ansible_collections.pkgcache.fleet.plugins.module_utils import _removal, options
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import act_as, authority
from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import hash_copy
from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import write_atomic
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import CREATE_FLAGS, DIR_FLAGS, READ_FLAGS
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import Store, json_text, object_damage, utc_stamp
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_integrity import (
    FAST, FULL, IDENTITY, MODES, RECORD, CacheAudit, PackageAudit, check_tarball, dump_record, record_for)
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host, refuse_unknown_state, why_environments_unknown

QUARANTINE_DIR = ".quarantine"
QUARANTINE_RECORD = "quarantine.json"
NEEDS_CONDA = ("re-extraction needs conda (.conda holds zstd, which Python's standard library lacks); "
               "conda extracts the verified tarball again when an environment next needs it")
REDOWNLOAD = "no verified tarball here; conda downloads the package again when an environment next needs it"


class RepairError(Exception):
    """A tarball that cannot be extracted safely, or whose extraction does not check out."""


class Step(object):
    """One damaged dist of one cache: what happens to its extracted directory and its tarball."""

    def __init__(self, dist, package=None, tarball=None):
        self.dist = dist
        self.package = package  # relpath of the damaged extracted directory, or None
        self.tarball = tarball  # relpath of the dist's tarball, or None
        self.quarantine_tarball = False
        self.restore = None  # (store object path, sha256, size) to copy the tarball back from
        self.extract = False
        self.quarantine_package = False
        self.kept = None  # why the damaged package stays where it is
        self.note = None
        self.findings = []
        self.record = None  # the package's valid repodata_record.json, kept for its re-extraction
        self.url = None

    @property
    def action(self):
        if self.extract:
            return "repair"
        if self.quarantine_package or self.quarantine_tarball:
            return "quarantine"
        return "keep"

    def as_dict(self, cache):
        return {
            "dist": self.dist,
            "action": self.action,
            "package": posixpath.join(cache, self.package) if self.package else None,
            "tarball": posixpath.join(cache, self.tarball) if self.tarball else None,
            "quarantine_package": self.quarantine_package,
            "quarantine_tarball": self.quarantine_tarball,
            "restore_tarball_from": self.restore[0] if self.restore else None,
            "re_extract": self.extract,
            "kept": self.kept,
            "note": self.note,
            "findings": self.findings,
            "record": self.record,
            "url": self.url,
        }

    def lines(self, cache):
        """``(before, after)`` lines of the diff: each damaged entry and what becomes of it."""
        before, after = [], []
        for rel, moved in ((self.package, self.quarantine_package), (self.tarball, self.quarantine_tarball)):
            whats = sorted(set(f["what"] for f in self.findings if f["entry"] == posixpath.join(cache, rel or "")))
            if not rel or not whats:
                continue
            path = posixpath.join(cache, rel)
            before.append("%s  (damaged: %s)" % (path, ", ".join(whats)))
            if rel == self.package and self.extract:
                after.append("%s  (re-extracted from %s)" % (path, self.tarball))
            elif rel == self.tarball and self.restore:
                after.append("%s  (copied back from %s)" % (path, self.restore[0]))
            elif moved:
                after.append("%s  (moved to %s/)" % (path, QUARANTINE_DIR))
            else:
                after.append("%s  (kept: %s)" % (path, self.kept))
        return before, after


class CachePlan(object):
    """The repair plan of one cache, with the credentials it is carried out with."""

    def __init__(self, cache, audit, routes):
        self.cache = cache
        self.audit = audit
        self.steps = []
        self.identity, self.expect, self.skipped = authority(cache.path, routes)
        self.done = []
        self.errors = []
        self.quarantine = None

    def as_dict(self):
        return {
            "path": self.cache.path,
            "skipped": self.skipped,
            "steps": [step.as_dict(self.cache.path) for step in self.steps],
            "quarantine": self.quarantine,
            "done": self.done,
            "errors": self.errors,
        }


def plan_cache(cache, audit, verdicts, routes, re_extract=True, store=None):
    """What to do with each damaged dist of ``cache`` (audited: :class:`conda_integrity.CacheAudit`)."""
    plan = CachePlan(cache, audit, routes)
    by_dist = {}
    tarballs = dict((t.dist, t) for t in cache.tarballs)
    packages = dict((p.path, p) for p in cache.extracted)
    for path in audit.damaged:
        entry = packages.get(path) or next(t for t in cache.tarballs if t.path == path)
        step = by_dist.get(entry.dist)
        if step is None:
            tarball = tarballs.get(entry.dist)
            step = by_dist[entry.dist] = Step(entry.dist, tarball=tarball.relpath if tarball else None)
        if entry.path in packages:
            step.package = entry.relpath
            step.record = audit.packages[path].record
            step.findings.extend(audit.packages[path].findings)
        else:
            step.findings.extend(audit.tarballs[path])
    for dist in sorted(by_dist):
        step = by_dist[dist]
        _decide(step, cache, audit, verdicts, re_extract, store)
        plan.steps.append(step)
    return plan


def _decide(step, cache, audit, verdicts, re_extract, store):
    verified = False
    if step.tarball:
        path = os.path.join(cache.path, step.tarball)
        expected = audit.expected[path]
        step.url = expected.url
        # A repair trusts only a tarball whose hash was checked, whatever the audit's mode.
        bad = audit.tarballs[path] or (expected.verifiable and audit.mode != FULL and check_tarball(path, expected, True))
        if bad:
            if not audit.tarballs[path]:
                step.findings.extend(bad)
            step.quarantine_tarball = True
            if store is not None and expected.sha256 and expected.size is not None \
                    and object_damage(store, expected.sha256.lower(), expected.size, True) is None:
                step.restore = (store.object_path(expected.sha256.lower()), expected.sha256.lower(), expected.size)
                verified = True
        else:
            verified = expected.verifiable
    if not step.package:
        return
    if verified and re_extract and step.tarball.endswith(".tar.bz2"):
        step.extract = True
        return
    verdict = verdicts.get(os.path.join(cache.path, step.package))
    if verdict is not None and any(r.link_type == "softlink" for _e, r in verdict.referenced_by):
        step.kept = "a soft-linked environment points into it and it cannot be re-extracted here"
        step.note = NEEDS_CONDA if verified else REDOWNLOAD
        return
    step.quarantine_package = True
    if verified and step.tarball.endswith(".conda"):
        step.note = NEEDS_CONDA
    elif not verified:
        step.note = REDOWNLOAD


def plan(host, mode, caches, re_extract=True, backup_dest=None):
    """Audit ``caches`` (scanned caches of ``host``) and plan their repair; ``[CachePlan]``."""
    verdicts = host.verdicts()
    store = Store(backup_dest, "repair") if backup_dest else None
    plans = []
    for cache in caches:
        audit = CacheAudit(cache, mode).run()
        plans.append(plan_cache(cache, audit, verdicts, host.routes(cache), re_extract, store))
    return plans


def execute(plans, now=None):
    """Carry out every plan as its cache's owner; each plan records ``done`` and ``errors``."""
    stamp = utc_stamp(now)
    for cache_plan in plans:
        if cache_plan.skipped or not any(s.action != "keep" for s in cache_plan.steps):
            continue
        steps = [step.as_dict(cache_plan.cache.path) for step in cache_plan.steps]
        try:
            quarantine, done, errors = act_as(cache_plan.identity, apply_cache, cache_plan.cache.path, steps,
                                              cache_plan.expect, stamp)
        except Exception as exc:  # pylint: disable=broad-except  # reported with the cache named
            quarantine, done, errors = None, [], ["%s: %s" % (cache_plan.cache.path, exc)]
        cache_plan.quarantine, cache_plan.done, cache_plan.errors = quarantine, done, errors


def apply_cache(cache_path, steps, expect, stamp):
    """The steps of one cache, in the process that runs as its owner: ``(quarantine dir, done, errors)``.

    ``done`` lists ``{dist, action, moved, restored, re_extracted}``; the quarantine record is
    written after every step, so what was moved is recorded even when a later step fails."""
    done, errors, moved = [], [], []
    with _removal.CacheDir(cache_path, expect=expect):
        root = os.path.realpath(cache_path)
        quarantine = os.path.join(root, QUARANTINE_DIR, stamp)
        for step in steps:
            if step["action"] == "keep":
                continue
            try:
                done.append(_apply_step(Paths(root, quarantine, step), step, moved))
            except Exception as exc:  # pylint: disable=broad-except  # one dist's failure stops no other
                errors.append("%s: %s" % (step["package"] or step["tarball"], exc))
            if moved:
                write_atomic(os.path.join(quarantine, QUARANTINE_RECORD), json_text({"moved": moved}),
                             keep_existing=False)
    return (quarantine if moved else None), done, errors


class Paths(object):
    """Where one step works: its entries at the top of the cache's real directory, the quarantine."""

    def __init__(self, root, quarantine, step):
        self.quarantine = quarantine
        self.package = os.path.join(root, os.path.basename(step["package"])) if step["package"] else None
        self.tarball = os.path.join(root, os.path.basename(step["tarball"])) if step["tarball"] else None


def _apply_step(at, step, moved):
    result = {"dist": step["dist"], "action": step["action"], "moved": [], "restored": None, "re_extracted": None}
    if step["quarantine_tarball"]:
        result["moved"].append(_move_aside(at.tarball, at.quarantine, step, moved))
    if step["restore_tarball_from"]:
        result["restored"] = _restore(step["restore_tarball_from"], at.tarball, at.quarantine)
    if step["re_extract"]:
        new = _extract_verified(at.tarball, step, at.quarantine)
        result["moved"].append(_move_aside(at.package, at.quarantine, step, moved))
        os.rename(new, at.package)
        result["re_extracted"] = at.package
    elif step["quarantine_package"]:
        result["moved"].append(_move_aside(at.package, at.quarantine, step, moved))
    return result


def _move_aside(path, quarantine, step, moved):
    """Rename ``path`` (an entry at the top of the cache, not a symlink) into the quarantine."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise RepairError("%s is a symlink now; left alone" % path)
    _makedirs(quarantine)
    target = os.path.join(quarantine, os.path.basename(path))
    if os.path.lexists(target):
        raise RepairError("%s already exists" % target)
    os.rename(path, target)
    entry = [f for f in step["findings"] if os.path.basename(f["entry"]) == os.path.basename(path)]
    moved.append({"original": path, "moved_to": target, "dist": step["dist"], "findings": entry})
    return target


def _makedirs(path):
    try:
        os.makedirs(path, 0o755)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise


def _restore(source, tarball, quarantine):
    """Copy the store's object to ``tarball`` (through a temp file in the quarantine), verified."""
    _makedirs(quarantine)
    temp = os.path.join(quarantine, ".restoring-" + os.path.basename(tarball))
    fd = os.open(temp, CREATE_FLAGS, 0o644)
    try:
        _size, sha256, _md5, _before, _after = hash_copy(source, fd, want_md5=False)
    finally:
        os.close(fd)
    expected = os.path.basename(source)
    if sha256 != expected:
        raise RepairError("the backup store's %s hashes to %s; not restored" % (source, sha256))
    os.rename(temp, tarball)
    return source


def _extract_verified(tarball, step, quarantine):
    """Extract ``tarball`` into a new directory in the quarantine and check it; its path.

    A failed check leaves the new directory there (named ``.extracting-<dist>``), never in the
    cache.  Its ``repodata_record.json`` is the old one when that was sound, else index.json plus
    the tarball's hashes, as conda writes it."""
    _makedirs(quarantine)
    new = os.path.join(quarantine, ".extracting-" + step["dist"])
    os.mkdir(new, 0o755)
    safe_extract(tarball, new)
    audit = PackageAudit(new, FULL).run()
    identity = "-".join(str((audit.index or {}).get(k)) for k in IDENTITY)
    if identity != step["dist"]:
        raise RepairError("%s holds %s, not %s; the extraction stays in %s" % (tarball, identity, step["dist"], new))
    if audit.findings:
        raise RepairError("the extraction of %s does not match its paths.json (%s); it stays in %s" % (
            tarball, ", ".join(sorted(set(f["what"] for f in audit.findings))), new))
    record = step["record"] or record_for(audit.index, tarball, step["url"])
    write_atomic(os.path.join(new, RECORD), dump_record(record), keep_existing=False)
    return new


def _member_target(member):
    """The member's path below the package, refused when it could lead outside it."""
    name = posixpath.normpath(member.name)
    if not member.name or member.name.startswith("/") or name == ".." or name.startswith("../") or name == ".":
        raise RepairError("member %r leads outside the package" % member.name)
    return name


def _inside_link(name, target):
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    return not target.startswith("/") and resolved != ".." and not resolved.startswith("../")


def safe_extract(tarball, dest):
    """Extract a ``.tar.bz2`` into the new, empty directory ``dest`` without trusting its members.

    Directories and files first, symlinks last, so no file is ever written through a link the
    archive made; every parent directory is checked not to be a link; files are created with
    ``O_EXCL|O_NOFOLLOW`` and lose set-id bits."""
    fd = os.open(tarball, READ_FLAGS)
    with os.fdopen(fd, "rb") as handle, tarfile.open(fileobj=handle, mode="r:bz2") as archive:
        links, written = [], set()
        for member in archive:
            name = _member_target(member)
            path = os.path.join(dest, name)
            if member.isdir():
                _make_parents(dest, name + "/x")
            elif member.isreg():
                _make_parents(dest, name)
                source = archive.extractfile(member)
                out = os.open(path, CREATE_FLAGS, member.mode & 0o777)
                with os.fdopen(out, "wb") as sink:
                    while True:
                        chunk = source.read(1 << 20)
                        if not chunk:
                            break
                        sink.write(chunk)
                os.utime(path, (member.mtime, member.mtime))
                written.add(name)
            elif member.issym() or member.islnk():
                links.append((name, member))
            else:
                raise RepairError("member %r is a device or FIFO" % member.name)
        for name, member in links:
            _make_parents(dest, name)
            if member.islnk():
                source = posixpath.normpath(member.linkname)
                if source not in written:
                    raise RepairError("hard link %r to %r, which is not a file extracted before" % (
                        member.name, member.linkname))
                os.link(os.path.join(dest, source), os.path.join(dest, name))
            elif _inside_link(name, member.linkname):
                os.symlink(member.linkname, os.path.join(dest, name))
            else:
                raise RepairError("symlink %r -> %r leads outside the package" % (member.name, member.linkname))


def _make_parents(dest, name):
    """Create the directories above ``name`` inside ``dest``, refusing any that is a link."""
    fd = os.open(dest, DIR_FLAGS)
    try:
        for part in name.split("/")[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
            child = os.open(part, DIR_FLAGS, dir_fd=fd)  # ELOOP for a symlink: refused
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def argument_spec():
    """conda_cache_repair's options."""
    return options.argument_spec(
        options.USERS, options.ENVIRONMENT, options.CONDA_CACHES,
        mode=dict(type="str", choices=list(MODES), default=FAST),
        re_extract=dict(type="bool", default=True),
        backup_dest=dict(type="path"),
    )


def repair_from_options(params, check_mode):
    """What conda_cache_repair does with its options: ``(result, warnings)``.  OptionError before
    anything is read; ValueError when the host's state is not fully known (nothing changed)."""
    accounts = options.select_homes(params["users"])
    options.check_sight(accounts)
    host = Host.load(accounts, params["roots"], options.shell_environment(params["environment"]))
    return repair(host, params, check_mode), host.warnings


def repair(host, params, check_mode):
    """Audit, plan and (unless ``check_mode``) repair the caches ``params`` select on ``host``."""
    refuse_unknown_state(host)
    unknown = why_environments_unknown(host)
    if unknown:
        raise ValueError("refusing to move packages: %s" % unknown)
    plans = plan(host, params["mode"], host.select_caches(params["roots"], params["pkgs_dirs"]),
                 params["re_extract"], params["backup_dest"])
    if not check_mode:
        execute(plans)
    return result_of(plans, params["mode"], check_mode)


def result_of(plans, mode, check_mode):
    """The module's result: per cache its plan and what was done, the diff's lines, a summary."""
    steps = [(p, s) for p in plans if not p.skipped for s in p.steps]
    acting = [s for _p, s in steps if s.action != "keep"]
    before, after = [], []
    for cache_plan, step in steps:
        lines = step.lines(cache_plan.cache.path)
        before.extend(lines[0])
        after.extend(lines[1])
    done = [d for p in plans for d in p.done]
    errors = [e for p in plans for e in p.errors]
    counts = dict((action, sum(1 for _p, s in steps if s.action == action)) for action in ("repair", "quarantine", "keep"))
    return {
        "changed": bool(acting) if check_mode else bool(done),
        "mode": mode,
        "caches": [p.as_dict() for p in plans],
        "quarantined": [m for d in done for m in d["moved"]],
        "re_extracted": [d["re_extracted"] for d in done if d["re_extracted"]],
        "errors": errors,
        "before": before,
        "after": after,
        "msg": "%s %d damaged dist(s): %d re-extracted, %d quarantined, %d kept; %d cache(s) skipped" % (
            "would handle" if check_mode else "handled", len(steps), counts["repair"], counts["quarantine"],
            counts["keep"], sum(1 for p in plans if p.skipped)),
    }


def exit_module(module, result, warnings):
    """End conda_cache_repair: the diff shows each damaged entry before and what became of it
    after; an entry that could not be handled fails the task, with all that was done."""
    out = Results(module)
    before, after = result.pop("before"), result.pop("after")
    if module._diff:
        result["diff"] = dict(before="".join(line + "\n" for line in before),
                              after="".join(line + "\n" for line in after),
                              before_header="conda caches", after_header="conda caches")
    errors = result.pop("errors")
    if errors:
        summary = result.pop("msg")
        out.fail("repair failed for %d entr(ies): %s (%s)" % (len(errors), "; ".join(errors[:5]), summary),
                 warnings=warnings, **result)
    out.exit(warnings=warnings, **result)
