# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``ansible_facts.conda_cache_integrity``: is a package cache itself sound?

An extracted package (``<pkgs_dir>/<dist>/``) is checked against what it says about itself:

- every file ``info/paths.json`` lists is there, is what its ``path_type`` says (a symlink that
  leads nowhere is *dangling*), has ``size_in_bytes`` and, in ``full`` mode, ``sha256``; a package
  from before ``paths.json`` is checked against ``info/files`` for presence only;
- ``info/repodata_record.json`` (written by conda or mamba at extraction) is a JSON object whose
  ``name``, ``version`` and ``build`` are ``info/index.json``'s; one of NUL bytes is *zeroed*
  (mamba 2.1.1-2.3.2, mamba#4052), one that does not parse is *invalid* (truncated, mamba#947).
  A missing one is no finding: rattler and pixi never write it.

A tarball (``<dist>.conda``, ``<dist>.tar.bz2``) is checked against the hashes recorded for it:
the same dist's ``repodata_record.json`` (``size``, ``sha256``, else ``md5``) and an explicit
``#md5``/``#sha256:`` fragment on its ``urls.txt`` line.  Its size always, its hash in ``full``
mode; a tarball nothing records a hash for is counted as unverified, not reported.

Every finding names the entry (the extracted directory or the tarball), the path, ``what`` is
wrong and the ``expected``/``found`` values.  :func:`plan_repair` turns findings into actions
that ``conda_cache_repair`` carries out (see :func:`apply_plan`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import re
import stat

from ansible_collections.pkgcache.fleet.plugins.module_utils._copy import hash_copy, sha256_of
from ansible_collections.pkgcache.fleet.plugins.module_utils._fs import RealDirs, inside
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import READ_TEXT
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_envs import FAST, FULL, MODES
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import URLS_TXT, read_record, strip_tarball_suffix

# Findings listed in the facts; ``findings_count`` and ``damaged`` stay exact beyond it.
MAX_LISTED = 1000
RECORD = "info/repodata_record.json"
IDENTITY = ("name", "version", "build")
_FRAGMENT = re.compile(r"#(?:sha256:(?P<sha256>[0-9a-fA-F]{64})|(?P<md5>[0-9a-fA-F]{32}))$")
_GONE = (errno.ENOENT, errno.ENOTDIR)


def finding(entry, path, what, expected=None, found=None):
    return {"entry": entry, "path": path, "what": what, "expected": expected, "found": found}


class Expected(object):
    """What a dist's tarball must be, and where that was read: ``size``, ``sha256``, ``md5``, ``url``."""

    __slots__ = ("size", "sha256", "md5", "url", "source")

    def __init__(self, size=None, sha256=None, md5=None, url=None, source=None):
        self.size, self.sha256, self.md5, self.url, self.source = size, sha256, md5, url, source

    @property
    def verifiable(self):
        return bool(self.sha256 or self.md5)


class PackageAudit(object):
    """One extracted package checked; ``findings`` lists what is wrong, ``record`` the valid
    ``repodata_record.json`` (None when missing or damaged)."""

    def __init__(self, path, mode):
        self.path = path
        self.mode = mode
        self.findings = []
        self.record = None
        self.index = None
        self.checked_files = 0
        self.hashed_files = 0
        self._real_dirs = RealDirs()

    def run(self):
        self.index = self._json("info/index.json", required=True)
        self._check_record()
        self._check_files()
        return self

    def add(self, path, what, expected=None, found=None):
        self.findings.append(finding(self.path, path, what, expected, found))

    def _json(self, rel, required):
        path = os.path.join(self.path, rel)
        data, error, corrupt = read_record(path)
        if corrupt:
            self.add(path, "zeroed" if str(error).startswith("zeroed") else "invalid_json",
                     "a JSON object", str(error))
        elif isinstance(error, OSError) and (required or error.errno not in _GONE):
            self.add(path, "unreadable", None, error.strerror or str(error))
        return data

    def _check_record(self):
        record = self._json(RECORD, required=False)
        if record is None or self.index is None:
            self.record = record
            return
        wrong = [key for key in IDENTITY if record.get(key) != self.index.get(key)]
        if wrong:
            path = os.path.join(self.path, RECORD)
            self.add(path, "record_mismatch", "-".join(str(self.index.get(k)) for k in IDENTITY),
                     "-".join(str(record.get(k)) for k in IDENTITY))
            return
        self.record = record

    def _check_files(self):
        paths_json = os.path.join(self.path, "info", "paths.json")
        data, error, corrupt = read_record(paths_json)
        listed = data.get("paths") if isinstance(data, dict) else None
        if corrupt or (data is not None and not isinstance(listed, list)):
            self.add(paths_json, "invalid_json", "a paths.json object", str(error or "no list of paths"))
            return
        if data is None:
            if error.errno not in _GONE:
                self.add(paths_json, "unreadable", None, error.strerror or str(error))
                return
            listed = [{"_path": rel} for rel in _files_listing(os.path.join(self.path, "info", "files"))]
        for entry in listed:
            rel = entry.get("_path") if isinstance(entry, dict) else None
            if isinstance(rel, str) and rel and not rel.startswith("/") and ".." not in rel.split("/"):
                self.checked_files += 1
                self._check_one(rel, entry)

    def _check_one(self, rel, entry):
        path = os.path.join(self.path, rel)
        try:
            st = os.lstat(path)
        except OSError as exc:
            if exc.errno in _GONE:
                self.add(path, "missing", entry.get("path_type") or "a file", None)
            else:
                self.add(path, "unreadable", None, exc.strerror)
            return
        kind = entry.get("path_type", "hardlink")
        if kind == "directory":
            if not stat.S_ISDIR(st.st_mode):
                self.add(path, "not_a_directory", "directory", _file_type(st))
            return
        if stat.S_ISLNK(st.st_mode):
            if kind != "softlink":
                self.add(path, "not_a_file", "regular file", "symlink")
            elif not os.path.exists(path):
                self.add(path, "dangling", "an existing target", os.readlink(path))
            return
        if kind == "softlink" or not stat.S_ISREG(st.st_mode):
            self.add(path, "not_a_file", "symlink" if kind == "softlink" else "regular file", _file_type(st))
            return
        size = entry.get("size_in_bytes")
        if isinstance(size, int) and not isinstance(size, bool) and st.st_size != size:
            self.add(path, "size", size, st.st_size)
            return
        sha256 = entry.get("sha256")
        if self.mode != FULL or not isinstance(sha256, str):
            return
        # Hashed only where the directory resolves inside the package: no link leads out of it.
        real = self._real_dirs[os.path.dirname(path)]
        if not inside(real, self._real_dirs[self.path]):
            self.add(path, "outside", "a path inside the package", real)
            return
        actual = sha256_of(path)
        self.hashed_files += 1
        if actual != sha256.lower():
            self.add(path, "sha256", sha256.lower(), actual)


def _file_type(st):
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISREG, "regular file"), (stat.S_ISLNK, "symlink")):
        if test(st.st_mode):
            return name
    return "special file"


def _files_listing(path):
    try:
        with open(path, **READ_TEXT) as handle:
            return [line.rstrip("\n") for line in handle if line.strip()]
    except (OSError, IOError):
        return []


def url_fragments(cache_path):
    """``{fn: Expected}`` from ``urls.txt`` lines (the last line for a file name wins)."""
    found = {}
    for line in _files_listing(os.path.join(cache_path, URLS_TXT)):
        line = line.strip()
        match = _FRAGMENT.search(line)
        url = line[:match.start()] if match else line
        fn = url.rsplit("/", 1)[-1]
        if strip_tarball_suffix(fn) is None:
            continue
        found[fn] = Expected(sha256=match and match.group("sha256"), md5=match and match.group("md5"), url=url,
                             source=URLS_TXT)
    return found


def expected_for(fn, record, fragments):
    """What the tarball ``fn`` must be: its dist's valid record, else its ``urls.txt`` fragment."""
    if record is not None and record.get("fn", fn) == fn:
        size = record.get("size")
        return Expected(size if isinstance(size, int) and not isinstance(size, bool) else None,
                        record.get("sha256") or None, record.get("md5") or None, record.get("url"), RECORD)
    return fragments.get(fn) or Expected()


def check_tarball(path, expected, rehash):
    """Findings of one tarball against ``expected``; its content is hashed when ``rehash``."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return [finding(path, path, "unreadable", None, exc.strerror)]
    if expected.size is not None and st.st_size != expected.size:
        return [finding(path, path, "size", expected.size, st.st_size)]
    if not rehash or not expected.verifiable:
        return []
    try:
        _size, sha256, md5, _before, _after = hash_copy(path, want_md5=not expected.sha256)
    except OSError as exc:
        return [finding(path, path, "unreadable", None, exc.strerror or str(exc))]
    if expected.sha256 and sha256 != expected.sha256.lower():
        return [finding(path, path, "sha256", expected.sha256.lower(), sha256)]
    if not expected.sha256 and md5 != expected.md5.lower():
        return [finding(path, path, "md5", expected.md5.lower(), md5)]
    return []


class CacheAudit(object):
    """One cache (a scanned :class:`conda_cache.PackageCache`) audited: ``packages`` (path ->
    PackageAudit), ``tarballs`` (path -> findings), ``expected`` (tarball path -> Expected)."""

    def __init__(self, cache, mode):
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % ", ".join(MODES))
        self.cache = cache
        self.mode = mode
        self.packages = {}
        self.tarballs = {}
        self.expected = {}
        self.unverified = 0

    def run(self):
        records = {}
        for package in self.cache.extracted:
            audit = self.packages[package.path] = PackageAudit(package.path, self.mode).run()
            records[package.dist] = audit.record
        fragments = url_fragments(self.cache.path)
        for tarball in self.cache.tarballs:
            fn = os.path.basename(tarball.relpath)
            expected = self.expected[tarball.path] = expected_for(
                fn, records.get(strip_tarball_suffix(fn)), fragments)
            if not expected.verifiable:
                self.unverified += 1
            self.tarballs[tarball.path] = check_tarball(tarball.path, expected, self.mode == FULL)
        return self

    @property
    def findings(self):
        found = [f for audit in self.packages.values() for f in audit.findings]
        return found + [f for findings in self.tarballs.values() for f in findings]

    @property
    def damaged(self):
        """Paths of the entries (extracted directories, tarballs) with a finding."""
        return sorted(set(f["entry"] for f in self.findings))

    def as_dict(self):
        audits = self.packages.values()
        return {
            "path": self.cache.path,
            "packages": len(self.packages),
            "tarballs": len(self.tarballs),
            "checked_files": sum(a.checked_files for a in audits),
            "hashed_files": sum(a.hashed_files for a in audits),
            "unverified_tarballs": self.unverified,
            "damaged": self.damaged,
        }


def gather(users, roots=(), env=None, mode=FAST):
    """The integrity facts of every cache of the host."""
    host = Host(users, roots, env).resolve_configs().load_caches()
    audits = [CacheAudit(cache, mode).run() for cache in host.caches if cache.exists]
    return facts_of(audits, mode, list(host.warnings))


def facts_of(audits, mode, warnings):
    findings = [f for audit in audits for f in audit.findings]
    damaged = [path for audit in audits for path in audit.damaged]
    return {
        "mode": mode,
        "sound": not findings,
        "caches": [audit.as_dict() for audit in audits],
        "findings": findings[:MAX_LISTED],
        "findings_count": len(findings),
        "damaged": damaged,
        "totals": {
            "caches": len(audits),
            "packages": sum(len(a.packages) for a in audits),
            "tarballs": sum(len(a.tarballs) for a in audits),
            "damaged": len(damaged),
            "unverified_tarballs": sum(a.unverified for a in audits),
        },
        "warnings": warnings,
    }


def record_for(index, tarball_path, url):
    """The ``repodata_record.json`` of a package re-extracted from a verified tarball: index.json
    plus what the tarball is (as conda writes it after extraction)."""
    record = dict(index)
    size, sha256, md5, _before, _after = hash_copy(tarball_path)
    record.update(fn=os.path.basename(tarball_path), size=size, sha256=sha256, md5=md5)
    if url:
        record.update(url=url, channel=url.rsplit("/", 2)[0])
    return record


def dump_record(record):
    return json.dumps(record, indent=2, sort_keys=True) + "\n"
