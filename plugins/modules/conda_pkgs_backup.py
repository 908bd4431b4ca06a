#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: conda_pkgs_backup
short_description: Verified, incremental, restorable backup of conda package tarballs
version_added: 0.1.0
description:
  - V(present) copies every package tarball (C(*.conda), C(*.tar.bz2)) of the selected caches into
    O(dest), a directory on the host (another disk, an NFS mount shared by many hosts).
  - The store is content-addressed (C(store/sha256/<aa>/<sha256>)), so hosts backing up into one
    O(dest) store each distinct package once. Each run that changes something writes a manifest
    C(manifests/<host_id>/<UTC time>.json) listing file name, size, md5, sha256, URL, channel, subdir,
    source cache, mtime, ctime and inode of every tarball (one entry per line).
  - Before a tarball is stored it is checked against C(info/repodata_record.json) of its extracted
    package when that exists (size and sha256; md5 when the record has no sha256). A tarball that
    does not match is reported under RV(rejected) and not stored.
  - Incremental. A tarball whose path, size, mtime, ctime and inode match this host's last manifest,
    and whose object is in the store, is not read at all (nor is its repodata record). Everything else
    is read once, hashed while it is copied.
    A second run with nothing new reports C(changed=false) and writes no manifest.
  - Every file is written under a temporary name, flushed to disk, then renamed; a killed or failing
    run (disk full) never leaves a partial file under a final name. A failing run removes its
    temporary files; the next run removes those of a killed one.
  - Self-healing. V(present) never trusts a stored object whose size differs from the tarball's, and
    re-hashes the object of every tarball it reads whose content is already stored (one more read of
    that object). A damaged object is replaced by the freshly verified tarball (written under a
    temporary name, flushed, renamed over it), listed under RV(repaired) and in the manifest's
    C(repaired), and the run is C(changed). An unchanged tarball's object is only size-checked, unless
    O(rehash) or O(prune_source) is set. Objects no tarball of this host holds any more cannot be
    repaired here; V(verified) reports them.
  - V(verified) re-hashes the store (or one manifest's objects) and reports missing and corrupt ones.
  - V(restored) copies a manifest's tarballs back into a cache, verified against the store digests and
    the cache's repodata records, and appends their URLs to C(urls.txt) so conda uses them.
  - Environments in the backup. V(present) also records, in the manifest (format 2; format 1 manifests
    stay readable), every environment the host knows (every installation, every user) with its explicit
    spec (each package's URL, md5, sha256, size and repodata fields, from its PrefixRecord in
    C(conda-meta); what C(conda list --explicit --md5) prints) and the specs C(conda-meta/history) says
    were requested. An environment whose packages the store does not hold is reported incomplete in
    RV(environments), with the missing files.
  - V(restored) with O(environments) re-creates environments offline, on this host or any other that
    mounts O(dest) (name the recorded host with O(host_id)). The module does not install packages itself
    (C(.conda) payloads need zstd, and linking needs conda's prefix rewriting). It builds a restore kit in
    C(dest/restore/<host>/<manifest>/), a C(channel/<subdir>/) of the environments' tarballs (hard links
    of store objects re-hashed intact, or copies) with its C(repodata.json), and one explicit file per
    environment with C(file://) URLs into it. Then, when O(installer) is set or C(conda), C(mamba) or
    C(micromamba) is on C(PATH), it runs
    C(<installer> create --offline --yes --prefix <target> --file <explicit file>) and checks the new
    environment's records name exactly the recorded packages. Without an installer each environment is
    reported V(needs_conda) with that command (or, by name,
    C(conda create --offline -n NAME --file <explicit file>)), which works on any host with conda.
author:
  - pkgcache.fleet contributors (@pkgcache)
extends_documentation_fragment:
  - pkgcache.fleet.users.conda
  - pkgcache.fleet.environment.conda
  - pkgcache.fleet.conda_caches
  - pkgcache.fleet.workers
  - pkgcache.fleet.printable
  - pkgcache.fleet.skip_without_conda
attributes:
  check_mode:
    support: full
    description: Reads and verifies what a real run would; reports what would be copied, repaired or
      restored and its bytes, and which environments would be created; writes nothing.
  diff_mode:
    support: full
    description: Lists the files that are (or would be) added to or repaired in the store, added to the cache,
      or added to a restore kit, and the environments created.
options:
  state:
    description:
      - V(present) backs up, V(verified) checks the store, V(restored) puts tarballs back into a cache.
    type: str
    choices: [present, verified, restored]
    default: present
  dest:
    description:
      - The backup directory. It must exist and, for V(present), be writable. It may not lie inside a
        package cache or a conda environment.
    type: path
    required: true
  host_id:
    description:
      - Name of this host's manifest directory under C(dest/manifests/). Defaults to the host name.
      - With V(restored), whose manifests are read; to rebuild another host's environments, that host's name.
    type: str
  # roots and pkgs_dirs take their type and default from the conda_caches fragment.
  roots:
    description:
      - Only back up the caches of these installations. Default is every discovered one.
      - With V(restored), only the manifest's tarballs that came from these installations' caches.
  pkgs_dirs:
    description:
      - Only these caches. Each must be a known cache or contain C(urls.txt) or C(urls).
        Without it, only caches conda may write to (with a writable C(urls.txt)) are backed up.
      - With V(restored), only the manifest's tarballs that came from these caches (the first
        writable of them is the default O(cache)).
  manifest:
    description:
      - For V(restored), the manifest to restore, by path or by name under this host's manifests;
        default is this host's latest.
      - For V(verified), check only this manifest's objects; default is the whole store plus every
        object any manifest names.
    type: str
  cache:
    description:
      - For V(restored), the cache to restore into (created if missing). Default is the first
        conda-writable cache among the selected ones.
    type: path
  channel:
    description:
      - With V(present), also maintain C(dest/channel/<subdir>/repodata.json) and hard links of the
        stored files, from the latest manifest of every host, so that
        C(conda install --offline -c file://<dest>/channel) can install from the backup.
    type: bool
    default: false
  prune_source:
    description:
      - With V(present), remove each backed-up tarball from its cache once its stored copy has been
        re-hashed intact. Extracted packages are never touched. The manifest keeps pruned tarballs, so
        a restore of the latest manifest brings them back.
    type: bool
    default: false
  rehash:
    description:
      - With V(present), re-hash the stored object of every tarball of the selected caches, unchanged
        ones too, and repair each damaged one from its tarball. Costs one read of each of those
        objects (what V(verified) costs for this host's tarballs). O(prune_source) implies it.
    type: bool
    default: false
  environments:
    description:
      - With V(restored), re-create these recorded environments instead of restoring tarballs into a cache.
        Each is a recorded prefix, or a name (the prefix's last component, C(base) for an installation's
        root prefix) that must be unambiguous; V(*) means every recorded environment.
      - An environment that is incomplete in the backup, whose target exists with other packages, or whose
        target lies inside a package cache or O(dest) is rejected and nothing is written for it. A target
        that already holds exactly the recorded packages is V(present).
    type: list
    elements: str
    default: []
  environments_dir:
    description:
      - With O(environments), create each environment as C(<environments_dir>/<name>). Default is its
        recorded prefix.
    type: path
  installer:
    description:
      - With O(environments), the C(conda), C(mamba) or C(micromamba) executable that creates them; it runs
        as the module's user. Default is the first of those on C(PATH).
    type: path
  fail_on_mismatch:
    description:
      - Fail when a tarball does not match its record (V(present)), when objects are missing or corrupt
        (V(verified)), or when a restored tarball does not match its record or an environment is rejected (V(restored)).
    type: bool
    default: false
notes:
  - Files restored into a cache get the cache directory's owner. A restore into a cache a user owns (or a
    directory yet to be made in one) runs with that user's credentials, the store's objects opened by the
    module and handed over; a cache that is root's but named only by a user's config, or reached through a
    path someone else can change, is refused with the reason.
  - An environment's records and history are read with the rights of whoever controls the way to its
    C(conda-meta) (root, or the one user owning it), so a record linked to a file that user cannot read never
    reaches the manifest; a C(conda-meta) several users can redirect is not read (the environment is recorded
    as unreadable).
  - An environment re-created by O(installer) belongs to the module's user (root with become). The installer follows
    symlinks on the way to its prefix, so it runs only where nobody but root and the module's user can change that
    way, and not in a directory others may create names in (a sticky C(/tmp)); any other target (a user's home) is
    rejected with the reason and its kit kept - run the module as that user, or choose O(environments_dir).
seealso:
  - module: pkgcache.fleet.conda_clean
  - module: pkgcache.fleet.conda_cache_facts
"""

EXAMPLES = r"""
- name: Back up every cache into a shared NFS store, with an offline channel
  pkgcache.fleet.conda_pkgs_backup:
    dest: /mnt/backup/conda
    channel: true
  become: true

- name: Back up, then free the cache of the tarballs
  pkgcache.fleet.conda_pkgs_backup:
    dest: /mnt/backup/conda
    prune_source: true

- name: Weekly integrity check of the store
  pkgcache.fleet.conda_pkgs_backup:
    dest: /mnt/backup/conda
    state: verified
    fail_on_mismatch: true
  run_once: true

- name: Put this host's tarballs back into its cache
  pkgcache.fleet.conda_pkgs_backup:
    dest: /mnt/backup/conda
    state: restored

- name: Rebuild the old host's environments offline under /opt/envs on a new one
  pkgcache.fleet.conda_pkgs_backup:
    dest: /mnt/backup/conda
    state: restored
    host_id: oldhost
    environments: ["*"]
    environments_dir: /opt/envs
"""

RETURN = r"""
host_id:
  description: This host's manifest directory name.
  returned: always
  type: str
copied:
  description: Tarballs whose content was (or would be) added to the store, with C(source), C(fn),
    C(size), C(sha256).
  returned: state=present
  type: list
  elements: dict
stored:
  description: Tarballs read and verified whose content the store already held.
  returned: state=present
  type: list
  elements: dict
unchanged:
  description: Number of tarballs not read because the last manifest still describes them.
  returned: state=present
  type: int
rejected:
  description: Tarballs not stored (mismatch with their record, unreadable), not pruned, or not restored,
    with C(reason). (Not C(failed), which Ansible reserves for the task's own outcome.)
  returned: state in (present, restored)
  type: list
  elements: dict
skipped_caches:
  description:
    - Caches not read at all, with C(cache) and C(reason). Such a cache is reached through a path someone other
      than its owner and root can redirect, or is a directory of root's named only by a user (see SECURITY.md).
  returned: state=present
  type: list
  elements: dict
bytes_copied:
  description: Bytes added (or to add) to the store by RV(copied).
  returned: state=present
  type: int
repaired:
  description: Tarballs whose stored object was damaged (wrong size, or content that does not hash to
    its name) and was (or would be) replaced by the verified tarball, with C(source), C(fn), C(size),
    C(sha256) and C(damage). The manifest written by the run lists them under C(repaired).
  returned: state=present
  type: list
  elements: dict
manifest:
  description: The manifest written by this run (null when nothing changed or in check mode), or the
    manifest restored from or verified.
  returned: always
  type: str
pruned:
  description: Tarballs removed from their caches (or to remove, in check mode).
  returned: state=present
  type: list
  elements: str
channel:
  description: The channel directory, when O(channel) is set.
  returned: state=present
  type: str
checked:
  description: Number of store objects re-hashed.
  returned: state=verified
  type: int
missing:
  description: Objects a manifest names that the store lacks, with C(sha256) and C(path).
  returned: state=verified
  type: list
  elements: dict
corrupt:
  description: Objects whose content does not hash to their name (or size), with C(reason).
  returned: state=verified
  type: list
  elements: dict
bad_manifests:
  description: Manifests that do not parse.
  returned: state=verified
  type: list
  elements: str
cache:
  description: The cache restored into.
  returned: state=restored
  type: str
restored:
  description: Tarballs copied (or to copy) into the cache, with C(fn), C(path), C(size), C(sha256).
  returned: state=restored
  type: list
  elements: dict
present:
  description: Number of the manifest's tarballs already in the cache with the same content.
  returned: state=restored
  type: int
bytes_restored:
  description: Bytes of RV(restored).
  returned: state=restored
  type: int
urls_added:
  description: URLs appended to the cache's C(urls.txt).
  returned: state=restored
  type: list
  elements: str
record_mismatch:
  description: Tarballs in the cache that differ from their extracted package's repodata record.
  returned: state=restored
  type: list
  elements: dict
environments:
  description:
    - With V(present), every environment recorded in the manifest, with C(prefix), C(name), C(packages)
      (count), C(requested) (specs from the history), C(complete), C(missing) (tarballs the store lacks)
      and C(unreadable) (records that cannot be read).
    - With V(restored) and O(environments), each environment chosen, with C(prefix), C(name), C(target),
      C(packages), C(action) (V(present), V(create) in check mode, V(created), V(needs_conda), V(rejected)),
      C(explicit) (the kit's explicit file) and C(command) (how to create it), C(reason) when rejected,
      C(output) (the installer's last words) when the installer failed.
  returned: state=present, or state=restored with environments
  type: list
  elements: dict
installer:
  description: The installer used (null when none was found).
  returned: state=restored with environments
  type: str
kit:
  description: The restore kit directory (the channel and explicit files).
  returned: state=restored with environments
  type: str
msg:
  description: One-line summary.
  returned: always
  type: str
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pkgcache.fleet.plugins.module_utils import options
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup import run_backup
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_envs import (
    INSTALLERS, Kit, foreign_target, plan_environments, run_installer, summary)
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_restore import restore_identity, run_restore, verify
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_backup_store import BackupError, Store
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_host import Host
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import Results, human_bytes


def local_host_id():
    return socket.gethostname().split(".")[0]


def forbidden_places(host, caches, restore_into):
    """Where ``dest`` may not be: any known or selected cache, any environment (root prefixes too)."""
    places = [("package cache", c.path) for c in list(host.caches) + list(caches)]
    if restore_into:
        places.append(("package cache", restore_into))
    places.extend(("environment", env.prefix) for env in host.environments)
    return places


def diff(header, lines):
    text = "".join(line + "\n" for line in lines)
    return dict(before="", after=text, before_header=header, after_header=header)


def run_present(module, host, store, caches):
    params, check = module.params, module.check_mode
    if not params["pkgs_dirs"]:
        caches = [c for c in caches if c.conda_writable]
    run = run_backup(store, caches, host.warnings, check, params["workers"], params["prune_source"], params["channel"],
                     routes_of=host.routes, rehash=params["rehash"], environments=host.environments)
    plan, copied, repaired = run.plan, run.copied, run.repaired
    rejected = [i.as_dict() for i in plan.of("failed")]
    result = dict(
        changed=run.changed,
        copied=[i.as_dict() for i in copied],
        stored=[i.as_dict() for i in plan.items
                if i.entry is not None and not (i.copied or i.repaired) and i.action != "unchanged"],
        unchanged=len(plan.of("unchanged")),
        rejected=rejected + run.prune_failures,
        skipped_caches=run.skipped,
        bytes_copied=sum(i.size for i in copied),
        repaired=[i.as_dict() for i in repaired],
        manifest=run.manifest,
        pruned=run.pruned,
        channel=run.channel,
        environments=[summary(e) for e in plan.environments],
    )
    if module._diff:
        lines = ["%s -> %s (%d bytes)" % (i.path, store.object_path(i.entry["sha256"]), i.size) for i in copied]
        lines += ["%s -> %s (%d bytes, replacing a damaged object: %s)" % (
            i.path, store.object_path(i.entry["sha256"]), i.size, i.damage) for i in repaired]
        result["diff"] = diff(store.dest, lines + ["removed %s" % p for p in run.pruned])
    result["msg"] = "%s %d tarball(s) (%s) to %s; %d already stored, %d unchanged, %d rejected%s%s" % (
        "would copy" if check else "copied", len(copied), human_bytes(result["bytes_copied"]), store.dest,
        len(result["stored"]), result["unchanged"], len(rejected),
        "; %s %d damaged object(s)" % ("would repair" if check else "repaired", len(repaired)) if repaired else "",
        "; pruned %d" % len(run.pruned) if run.pruned else "")
    if run.skipped:
        result["msg"] += "; %d cache(s) skipped (see skipped_caches)" % len(run.skipped)
    incomplete = [e for e in result["environments"] if not e["complete"]]
    result["msg"] += "; %d environment(s) recorded%s" % (
        len(result["environments"]), ", %d incomplete in the store" % len(incomplete) if incomplete else "")
    return result, bool(rejected)


def run_verified(module, store):
    manifest = store.resolve(module.params["manifest"]) if module.params["manifest"] else None
    checked, missing, corrupt, bad = verify(store, manifest, module.params["workers"])
    result = dict(changed=False, checked=checked, missing=missing, corrupt=corrupt, bad_manifests=bad,
                  manifest=manifest.path if manifest else None)
    result["msg"] = "checked %d object(s) in %s: %d missing, %d corrupt, %d unreadable manifest(s)" % (
        checked, store.dest, len(missing), len(corrupt), len(bad))
    return result, bool(missing or corrupt or bad)


def restore_target(module, host, caches):
    """The cache to restore into and the routes naming it (None: the operator's ``cache``)."""
    if module.params["cache"]:
        return module.params["cache"], None
    writable = [c for c in caches if c.conda_writable]
    if not writable:
        raise BackupError("no conda-writable cache to restore into; name one with cache")
    return writable[0].path, host.routes(writable[0])


def run_restored(module, host, store, caches):
    params, check = module.params, module.check_mode
    manifest = store.resolve(params["manifest"])
    cache_path, routes = restore_target(module, host, caches)
    identity = restore_identity(cache_path, routes)
    only = [c.path for c in caches] if params["roots"] or params["pkgs_dirs"] else None
    items, urls_added, mismatch = run_restore(store, manifest, cache_path, host.warnings, check, params["workers"], only,
                                              identity)
    restored = [i for i in items if i.action in ("restore", "replace")]
    rejected = [i.as_dict() for i in items if i.action == "failed"]
    result = dict(
        changed=bool(restored or urls_added),
        cache=cache_path,
        manifest=manifest.path,
        restored=[i.as_dict() for i in restored],
        present=sum(1 for i in items if i.action == "present"),
        bytes_restored=sum(i.entry["size"] for i in restored),
        urls_added=urls_added,
        rejected=rejected,
        record_mismatch=mismatch,
    )
    if module._diff:
        result["diff"] = diff(cache_path, ["%s (%d bytes%s)" % (
            i.target, i.entry["size"], ", replacing a different file" if i.action == "replace" else "") for i in restored])
    result["msg"] = "%s %d tarball(s) (%s) into %s from %s; %d already present, %d rejected" % (
        "would restore" if check else "restored", len(restored), human_bytes(result["bytes_restored"]),
        cache_path, manifest.path, result["present"], len(rejected))
    return result, bool(rejected or mismatch)


def run_restored_environments(module, host, store):
    """Re-create environments from the manifest (``conda_backup_envs``)."""
    params, check = module.params, module.check_mode
    manifest = store.resolve(params["manifest"])
    forbidden = [("package cache", c.path) for c in host.caches] + [("backup directory", store.dest)]
    items = plan_environments(store, manifest, params["environments"], params["environments_dir"], forbidden)
    installer = params["installer"] or next(
        (found for found in (module.get_bin_path(name) for name in INSTALLERS) if found), None)
    # Temp files carry this host's name: the manifest's host may be another, alive on a shared dest.
    kit = Kit(Store(store.dest, local_host_id()), manifest)
    kit.prepare(items, check)
    for item in items:
        if item.action == "create":
            refused = foreign_target(item.target) if installer is not None else None
            if installer is None:
                item.action = "needs_conda"
            elif refused:
                item.action, item.reason = "rejected", refused
            elif not check:
                run_installer(module, installer, item)
    built = [i for i in items if i.action in ("create", "created")]
    rejected = [i for i in items if i.action == "rejected"]
    result = dict(
        changed=bool(kit.changes or built),
        manifest=manifest.path,
        installer=installer,
        kit=kit.path,
        environments=[i.as_dict(installer) for i in items],
    )
    if module._diff:
        result["diff"] = diff(kit.path, kit.changes + ["created %s" % i.target for i in built])
    counts = dict((action, sum(1 for i in items if i.action == action))
                  for action in ("present", "create", "created", "needs_conda", "rejected"))
    result["msg"] = ("%d environment(s) from %s: %d %s, %d present, %d need conda (kit in %s), %d rejected" % (
        len(items), manifest.path, counts["create"] + counts["created"], "to create" if check else "created",
        counts["present"], counts["needs_conda"], kit.path, counts["rejected"]))
    return result, bool(rejected)


def main():
    module = AnsibleModule(
        argument_spec=options.argument_spec(
            options.USERS, options.ENVIRONMENT, options.CONDA_CACHES, options.WORKERS, options.SKIP_WITHOUT_CONDA,
            state=dict(type="str", default="present", choices=["present", "verified", "restored"]),
            dest=dict(type="path", required=True),
            host_id=dict(type="str"),
            manifest=dict(type="str"),
            cache=dict(type="path"),
            channel=dict(type="bool", default=False),
            prune_source=dict(type="bool", default=False),
            rehash=dict(type="bool", default=False),
            fail_on_mismatch=dict(type="bool", default=False),
            environments=dict(type="list", elements="str", default=[]),
            environments_dir=dict(type="path"),
            installer=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    state = params["state"]
    try:
        options.check_workers(params["workers"])
        accounts = options.select_homes(params["users"])
    except options.OptionError as exc:
        module.fail_json(msg=str(exc))
    try:
        store = Store(params["dest"], params["host_id"] or local_host_id())
        env = options.shell_environment(params["environment"])
        host = Host.load(accounts, params["roots"], env, tarballs_only=True)
        rebuild = state == "restored" and bool(params["environments"])
        if params["skip_without_conda"] and state != "verified" and not rebuild \
                and not (host.installations or params["pkgs_dirs"]):
            Results(module).exit(changed=False, skipped=True, msg=options.NO_CONDA)
        caches = host.select_caches(params["roots"], params["pkgs_dirs"])
        store.check(state == "present" or (rebuild and not module.check_mode),
                    forbidden_places(host, caches, params["cache"]))
        if state == "present":
            result, mismatch = run_present(module, host, store, caches)
        elif state == "verified":
            result, mismatch = run_verified(module, store)
        elif rebuild:
            result, mismatch = run_restored_environments(module, host, store)
        else:
            result, mismatch = run_restored(module, host, store, caches)
    except (BackupError, ValueError) as exc:
        Results(module).fail(str(exc))
    # Not "dest": AnsibleModule would add that path's stat fields to the result.
    result["host_id"] = store.host_id
    out = Results(module)
    if mismatch and params["fail_on_mismatch"]:
        out.fail(warnings=host.warnings, **result)
    out.exit(warnings=host.warnings, **result)


if __name__ == "__main__":
    main()
