# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Environments in the backup: what each environment is made of, recorded in the manifest, and
its offline re-creation on any host from the backup directory alone.

Recorded per environment (``Manifest.environments``, format 2):

* ``explicit``: one entry per PrefixRecord (``conda-meta/<dist>.json``), the record without what
  linking added (file lists, link, cache paths): URL, md5, sha256, size and the repodata fields.
  Rendered as text it is what ``conda list --explicit --md5`` prints (``url#md5``, name order).
* ``requested``: the specs ``conda-meta/history`` says were asked for (``# update specs:``).
* ``missing``: the files of ``explicit`` whose content the store does not hold (nor will once the
  run's copies are committed): such an environment is *incomplete* and cannot be rebuilt.
* ``unreadable``: records that cannot be read (their package is unknown; also incomplete).

Re-creating (``state: restored`` with ``environments``) never installs anything by itself: the
host has neither zstd (``.conda`` payloads) nor an installer's prefix rewriting.  It builds a
*restore kit* in the backup directory, ``restore/<host>/<manifest stem>/``:

* ``channel/<subdir>/<fn>``: the environments' tarballs, hard links of (else copies of) store
  objects re-hashed intact first, and ``repodata.json`` describing every file there;
* ``<name>-<8 hex of the prefix>.txt``: the explicit file, ``file://`` URLs into that channel;

then, when an installer (``conda``, ``mamba`` or ``micromamba``) is given or on ``PATH``, runs
``<installer> create --offline --yes --prefix <target> --file <explicit file>`` and checks the new
environment's records name exactly the recorded packages.  Without one the environment is
reported ``needs_conda`` with that command.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import io
import os
import stat

from ansible_collections.pkgcache.fleet.plugins.module_utils import _removal, conda_mamba
from ansible_collections.pkgcache.fleet.plugins.module_utils._authority import (
    ANYONE, ROOT, Identity, act_as, names_of, path_controllers)
from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import write_atomic
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import inside, open_regular
from ansible_collections.pkgcache.fleet.plugins.module_utils._privdrop import PrivDropError
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import (
    TMP_DIR, BackupError, backup_error, verify_object)
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_channel import (
    NOT_IN_REPODATA, load_json, place, repodata, same_file)
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import is_root_prefix, read_history, read_record

RESTORE_DIR = "restore"
ALL = "*"
INSTALLERS = ("conda", "mamba", "micromamba")  # looked up on PATH in this order
# What linking adds to a repodata record in a PrefixRecord: not part of what was installed.
LINKING_FIELDS = ("files", "paths_data", "link", "extracted_package_dir", "package_tarball_full_path",
                  "requested_spec", "requested_specs")
TARBALL_SUFFIXES = (".conda", ".tar.bz2")


# -- recording -------------------------------------------------------------------------------------

def package_of(record):
    """A PrefixRecord reduced to what an explicit spec and a channel need (None without a
    tarball file name: nothing could fetch it)."""
    data = dict((k, v) for k, v in record.items() if k not in LINKING_FIELDS)
    url = data.get("url") if isinstance(data.get("url"), str) else None
    fn = data.get("fn") if isinstance(data.get("fn"), str) else (url.rsplit("/", 1)[-1] if url else None)
    if not fn or "/" in fn or not fn.endswith(TARBALL_SUFFIXES):
        return None
    data["fn"] = fn
    if not url and isinstance(data.get("channel"), str):
        data["url"] = "%s/%s" % (data["channel"].rstrip("/"), fn)
    return data


def record_environment(environment, warnings):
    """The manifest entry of one environment (``missing`` is filled by :func:`mark_missing`).

    Its records and history are read with the rights of whoever controls the way to its
    ``conda-meta`` (root, or the one user who owns it), so a record linked to a file its user may
    not read can never copy that file into the backup; a ``conda-meta`` that several users, or
    anyone, can redirect is not read at all."""
    prefix = environment.prefix
    meta = os.path.join(prefix, "conda-meta")
    entry = {
        "prefix": prefix,
        "name": "base" if is_root_prefix(prefix) else os.path.basename(prefix.rstrip("/")),
        "owner": environment.owner,
        "platform": "noarch",
        "requested": [],
        "explicit": [],
        "unreadable": [],
        "missing": [],
    }
    identity, why = _reader(meta)
    if identity is None:
        entry["unreadable"] = ["conda-meta"]
        warnings.append("%s: not read (%s); environment %s cannot be rebuilt from the backup" % (meta, why, prefix))
        return entry
    try:
        explicit, unreadable, problems, requested = act_as(identity, _read_environment, prefix)
    except PrivDropError as exc:
        explicit, unreadable, problems, requested = [], ["conda-meta"], ["%s: %s" % (meta, exc)], []
    warnings.extend("%s; environment %s cannot be rebuilt from the backup" % (p, prefix) for p in problems)
    entry.update(platform=platform_of(explicit), requested=requested, unreadable=unreadable,
                 explicit=sorted(explicit, key=lambda p: p["fn"]))
    return entry


def _reader(meta):
    """``(Identity, None)`` to read ``meta`` with, or ``(None, why not)``."""
    try:
        real, controllers = path_controllers(meta)
        st = os.stat(real)
    except OSError as exc:
        return None, exc.strerror or str(exc)
    users = controllers - set([ROOT])
    if ANYONE in users or len(users) > 1:
        return None, "reached through a path several users can change"
    return Identity.of(users.pop() if users else ROOT, st.st_gid), None


def _read_environment(prefix):
    """``(explicit, unreadable dists, problems, requested specs)`` of a prefix, as JSON values."""
    meta = os.path.join(prefix, "conda-meta")
    explicit, unreadable, problems = [], [], []
    try:
        names = sorted(n for n in os.listdir(meta) if n.endswith(".json"))
    except OSError as exc:
        return [], ["conda-meta"], ["%s: %s" % (meta, exc.strerror or exc)], []
    for name in names:
        data, error, _corrupt = read_record(os.path.join(meta, name))
        package = package_of(data) if data is not None else None
        if package is None:
            unreadable.append(name[:-len(".json")])
            problems.append("%s: %s" % (os.path.join(meta, name),
                                        getattr(error, "strerror", None) or error or "no tarball file name"))
            continue
        explicit.append(package)
    history, _error = read_history(prefix)
    return explicit, unreadable, problems, sorted(history.requested.values()) if history is not None else []


def platform_of(explicit):
    subdirs = sorted(set(p.get("subdir") for p in explicit if p.get("subdir") not in (None, "noarch")))
    return subdirs[0] if subdirs else "noarch"


def mark_missing(environments, stored, store):
    """Fill each environment's ``missing``: files whose content is neither in ``stored``
    (``{sha256: size}`` of the run's entries, ``{md5: sha256}`` under key ``"md5"``) nor in the store.
    A record without sha256 is matched by its md5 to an entry of the run."""
    by_md5 = stored.get("md5", {})
    for environment in environments:
        missing = []
        for package in environment["explicit"]:
            sha256 = package.get("sha256") or by_md5.get(str(package.get("md5")).lower())
            size = package.get("size")
            if not sha256 or not (stored["sha256"].get(sha256) == size or in_store(store, sha256, size)):
                missing.append(package["fn"])
            elif not package.get("sha256"):
                package["sha256"] = sha256
        environment["missing"] = missing
    return environments


def in_store(store, sha256, size):
    """The store holds ``sha256`` (of ``size`` bytes, when the record says)."""
    return store.has(sha256, size) if size is not None else store.object_size(sha256) is not None


def record_environments(host_environments, plan, store, warnings):
    """Manifest entries of every environment, sorted by prefix, checked against the store."""
    entries = plan.entries()
    stored = {"sha256": dict((e["sha256"], e["size"]) for e in entries),
              "md5": dict((str(e["md5"]).lower(), e["sha256"]) for e in entries if e.get("md5"))}
    environments = [record_environment(e, warnings) for e in host_environments]
    return mark_missing(sorted(environments, key=lambda e: e["prefix"]), stored, store)


def summary(environment):
    """What a run's result says about one recorded environment."""
    return {"prefix": environment["prefix"], "name": environment["name"], "packages": len(environment["explicit"]),
            "requested": environment["requested"], "complete": not (environment["missing"] or environment["unreadable"]),
            "missing": environment["missing"], "unreadable": environment["unreadable"]}


def explicit_text(environment, url_of=None):
    """The explicit file of an environment, as ``conda list --explicit --md5`` writes it;
    ``url_of(package)`` gives each line's URL (default: the recorded one)."""
    lines = ["# This file may be used to create an environment using:",
             "# $ conda create --name <env> --file <this file>",
             "# platform: %s" % environment["platform"],
             "@EXPLICIT"]
    for package in environment["explicit"]:
        url = url_of(package) if url_of else package.get("url")
        lines.append("%s#%s" % (url, package["md5"]) if package.get("md5") else url)
    return "\n".join(lines) + "\n"


# -- choosing and placing --------------------------------------------------------------------------

def select(manifest, wanted):
    """The manifest's environments named in ``wanted`` (prefixes, names, or ``*``)."""
    recorded = manifest.environments
    if ALL in wanted:
        return list(recorded)
    chosen = []
    for name in wanted:
        matches = [e for e in recorded if e["prefix"] == os.path.normpath(name)] or \
            [e for e in recorded if e["name"] == name]
        if not matches:
            raise BackupError("environment %r is not in manifest %s (it records: %s)" % (
                name, manifest.path, ", ".join(e["prefix"] for e in recorded) or "none"))
        if len(matches) > 1:
            raise BackupError("environment name %r is ambiguous in manifest %s; name one of %s by prefix" % (
                name, manifest.path, ", ".join(e["prefix"] for e in matches)))
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


def target_of(environment, environments_dir):
    if not environments_dir:
        return environment["prefix"]
    return os.path.join(environments_dir, environment["name"])


def kit_dir(store, manifest):
    return store.path(RESTORE_DIR, manifest.host, os.path.basename(manifest.path)[:-len(".json")])


def explicit_name(environment):
    return "%s-%s.txt" % (environment["name"], hashlib.sha1(environment["prefix"].encode("utf-8")).hexdigest()[:8])


class EnvRestore(object):
    """One environment to re-create: ``action`` is ``present`` (the target holds exactly its
    packages), ``create`` (run the installer), ``needs_conda`` (no installer here) or ``rejected``."""

    def __init__(self, environment, target):
        self.environment, self.target = environment, target
        self.action, self.reason, self.explicit = None, None, None
        self.output = None

    def command(self, installer):
        return "%s create --offline --yes --prefix %s --file %s" % (installer or "conda", self.target, self.explicit)

    def as_dict(self, installer):
        result = {"prefix": self.environment["prefix"], "name": self.environment["name"], "target": self.target,
                  "action": self.action, "packages": len(self.environment["explicit"])}
        if self.explicit and self.action != "rejected":
            result.update(explicit=self.explicit, command=self.command(installer))
        if self.reason:
            result["reason"] = self.reason
        if self.output:
            result["output"] = self.output
        return result


def installed_fns(prefix):
    """The tarball names a prefix's PrefixRecords say are installed, or None when unreadable."""
    meta = os.path.join(prefix, "conda-meta")
    try:
        names = sorted(n for n in os.listdir(meta) if n.endswith(".json"))
    except OSError:
        return None
    fns = set()
    for name in names:
        data, _error, _corrupt = read_record(os.path.join(meta, name))
        package = package_of(data) if data is not None else None
        if package is None:
            return None
        fns.add(package["fn"])
    return fns


def plan_environments(store, manifest, wanted, environments_dir, forbidden=()):
    """An :class:`EnvRestore` per chosen environment, with its action (installer not yet known:
    ``create`` stands for "to build")."""
    items = [EnvRestore(e, target_of(e, environments_dir)) for e in select(manifest, wanted)]
    for item in items:
        environment = item.environment
        expected = set(p["fn"] for p in environment["explicit"])
        real = os.path.realpath(item.target)
        places = [path for what, path in forbidden if inside(real, os.path.realpath(path))]
        rivals = [i.environment["prefix"] for i in items if i is not item and i.target == item.target]
        strays = sorted(set(repr(p["subdir"]) for p in environment["explicit"] if not _channel_subdir(p)))
        if rivals:
            item.action, item.reason = "rejected", "%s would be created at the same target" % ", ".join(rivals)
        elif strays:
            # Its user wrote the records: a subdir like "/etc" or "../.." would place a package there.
            item.action, item.reason = "rejected", "records name a subdir that is not a channel's: %s" % ", ".join(strays)
        elif environment["missing"] or environment["unreadable"]:
            item.action = "rejected"
            item.reason = "incomplete in the backup: %s" % ", ".join(
                ["missing %s" % fn for fn in environment["missing"]] + ["unreadable record %s" % d for d in environment["unreadable"]])
        elif places:
            item.action, item.reason = "rejected", "target is inside %s" % places[0]
        elif os.path.lexists(item.target) and not _empty_dir(item.target):
            found = installed_fns(item.target)
            if found == expected:
                item.action = "present"
            else:
                item.action = "rejected"
                item.reason = "target exists and is not this environment (%s); nothing was touched" % (
                    "no readable conda-meta" if found is None else "%d of %d packages differ" % (
                        len(found ^ expected), len(expected)))
        else:
            lacking = [p["fn"] for p in environment["explicit"] if not in_store(store, p["sha256"], p.get("size"))]
            if lacking:
                item.action, item.reason = "rejected", "store objects missing now: %s" % ", ".join(lacking)
            else:
                item.action = "create"
    return items


def _channel_subdir(package):
    """Whether a recorded package's ``subdir`` (the kit's folder for it) is a conda platform subdir."""
    return conda_mamba.SUBDIR.match(package.get("subdir") or "noarch") is not None


def _empty_dir(path):
    try:
        return os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path)
    except OSError:
        return False


class Kit(object):
    """The restore kit of one manifest (see the module docstring); ``changes`` lists what a
    write added or would add."""

    def __init__(self, store, manifest):
        self.store = store
        self.manifest = manifest
        self.path = kit_dir(store, manifest)
        self.channel = os.path.join(self.path, "channel")
        self.changes = []

    def file_of(self, package):
        return os.path.join(self.channel, package.get("subdir") or "noarch", package["fn"])

    def url_of(self, package):
        return "file://" + self.file_of(package)

    def prepare(self, items, check_mode):
        """Place the packages and explicit files of the items to build; in check mode only list
        what would change.  Raises BackupError when a store object fails its re-hash."""
        building = [i for i in items if i.action == "create"]
        for item in items:
            if item.action in ("create", "present"):
                item.explicit = os.path.join(self.path, explicit_name(item.environment))
        if not building:
            return
        packages = {}
        for item in building:
            for package in item.environment["explicit"]:
                packages[self.file_of(package)] = package
        if check_mode:
            self.changes = [p for p in sorted(packages) if not same_file(self.store.object_path(packages[p]["sha256"]), p)]
            self.changes += [i.explicit for i in building if _read(i.explicit) != explicit_text(i.environment, self.url_of)]
            return
        try:
            for directory in (self.channel, self.store.path(TMP_DIR)):
                if not os.path.isdir(directory):
                    os.makedirs(directory, 0o755)
            with _removal.CacheDir(self.channel):
                self._place(packages)
                self._index()
                for item in building:
                    text = explicit_text(item.environment, self.url_of)
                    if _read(item.explicit) != text:
                        write_atomic(item.explicit, text, mode=None, keep_existing=False, temp=self.store.temp)
                        self.changes.append(item.explicit)
        except OSError as exc:
            raise backup_error("cannot write the restore kit", self.path, exc)
        except _removal.RemovalError as exc:
            raise BackupError(str(exc))

    def _place(self, packages):
        for target, package in sorted(packages.items()):
            source = self.store.object_path(package["sha256"])
            if same_file(source, target):
                continue
            problem = verify_object(self.store, package["sha256"], package.get("size"))
            if problem:
                raise BackupError("store object %s for %s is %s; not restored" % (source, package["fn"], problem))
            if not os.path.isdir(os.path.dirname(target)):
                os.makedirs(os.path.dirname(target), 0o755)
            place(self.store, source, target)
            self.changes.append(target)

    def _index(self):
        """``repodata.json`` per subdir: every file of the kit's channel that this manifest records."""
        known = dict((self.file_of(p), p) for e in self.manifest.environments for p in e["explicit"])
        for subdir in sorted(os.listdir(self.channel)):
            directory = os.path.join(self.channel, subdir)
            if not os.path.isdir(directory):
                continue
            present = {}
            for fn in sorted(os.listdir(directory)):
                package = known.get(os.path.join(directory, fn))
                if package is not None:
                    present[fn] = (package, dict((k, v) for k, v in package.items() if k not in NOT_IN_REPODATA))
            data = repodata(subdir, present)
            relpath = os.path.join(directory, "repodata.json")
            if load_json(relpath) != data:
                self.store.write_json(os.path.relpath(relpath, self.store.dest), data)
                self.changes.append(relpath)


def _read(path):
    try:
        with io.open(open_regular(path, follow=True), **READ_TEXT) as handle:
            return handle.read()
    except (OSError, IOError):
        return None


def foreign_target(target):
    """Why the installer may not create ``target`` with this run's rights, or None.

    The installer follows every symlink on the way to its prefix and writes there with the run's
    rights (root with become).  So the way to the nearest directory of ``target`` that exists must
    be one nobody but root and this run's user can change, and that directory must not let others
    create names in it (in a sticky ``/tmp`` anyone may claim the target's name first).  A target
    in a user's home is that user's to create: run the module as them, or choose
    ``environments_dir``."""
    # Absolute first: a relative environments_dir would otherwise climb to "" and never stop.
    existing = os.path.abspath(target)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    try:
        real, controllers = path_controllers(existing)
        st = os.stat(real)
    except OSError as exc:
        return "cannot tell who controls the way to %s: %s" % (target, exc.strerror or exc)
    others = controllers - set([ROOT, os.geteuid()])
    if others:
        return ("%s can change where %s leads, and the installer would write there as uid %d; run the module as "
                "that user or choose environments_dir" % (names_of(others), target, os.geteuid()))
    if stat.S_ISDIR(st.st_mode) and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return "others may create names in %s, the target's first existing directory" % existing
    return None


def run_installer(module, installer, item):
    """Create one environment with the installer; ``item.action`` becomes ``created`` when its
    records then name exactly the recorded packages, else ``rejected`` with the installer's words."""
    argv = [installer, "create", "--offline", "--yes", "--prefix", item.target, "--file", item.explicit]
    rc, out, err = module.run_command(argv)
    expected = set(p["fn"] for p in item.environment["explicit"])
    if rc == 0 and installed_fns(item.target) == expected:
        item.action = "created"
        return
    item.action = "rejected"
    item.reason = "%s exited %d%s" % (os.path.basename(installer), rc, "" if rc else " but the environment's records differ")
    item.output = (err or out or "")[-2000:]
