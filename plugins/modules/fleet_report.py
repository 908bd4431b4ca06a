#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: fleet_report
short_description: Write a fleet-wide cache report (JSON, CSV, Markdown, self-contained HTML) on the controller
version_added: 0.1.0
description:
  - Runs on the controller (an action plugin; nothing is executed on managed hosts). Reads the
    C(conda_cache) and C(pip_cache) facts, the clean results registered by the
    P(pkgcache.fleet.cache_clean#role) and P(pkgcache.fleet.pkgs_backup#role) roles and any failure
    of the collection's roles from the
    hostvars of every host of the play, and folds them into one report.
  - Per host - status (V(ok), V(incomplete) with the reasons, V(no_conda) when the facts show no conda
    installation, V(failed), V(unreachable), V(no_data)) with the error, conda, pip and rattler
    cache sizes (on-disk bytes, each inode once), reclaimable bytes (for rattler caches their unused packages), and when cleaning ran the
    before and after sizes, freed bytes (or the bytes a real run would free, in check mode).
  - Covers the hosts of the play it runs in (O(hosts), default C(ansible_play_hosts_all)), so
    under AWX job slicing each slice reports on its own hosts. Hosts no longer in
    O(active_hosts) (default C(ansible_play_hosts)) failed or were unreachable.
  - Run it once, on the controller - C(run_once=true), C(delegate_to=localhost).
author:
  - pkgcache.fleet contributors (@pkgcache)
attributes:
  check_mode:
    support: full
    description: Builds and returns the report without writing files. Use C(check_mode=false) on the
      task to write a preview report during a check run, as the P(pkgcache.fleet.fleet_report#role)
      role does.
  diff_mode:
    support: none
    description: The report is new on every run; there is nothing useful to diff.
  action:
    support: full
    description: Runs on the controller.
options:
  dest:
    description:
      - Directory to write the report files into; created if missing.
      - Default, never inside the collection (a reinstall replaces it, an execution environment
        may hold it read-only) - under ansible-runner, and so in AWX, C(pkgcache-report/) in the
        job's artifacts directory (C(AWX_ISOLATED_DATA_DIR)); otherwise C(pkgcache-report/) in the
        current working directory, where C(ansible-playbook) was started.
      - A relative path is taken from the current working directory.
    type: path
  formats:
    description: Which files to write, named C(<basename>.json), C(.csv), C(.md), C(.html).
    type: list
    elements: str
    choices: [json, csv, markdown, html]
    default: [json, csv, markdown, html]
  basename:
    description: File name without extension.
    type: str
    default: fleet-report
  title:
    description: Heading of the Markdown and HTML reports.
    type: str
    default: pkgcache.fleet cache report
  hosts:
    description: Hosts to report on, in order. Default is C(ansible_play_hosts_all).
    type: list
    elements: str
  active_hosts:
    description: Hosts still in the play. Default is C(ansible_play_hosts).
    type: list
    elements: str
  history:
    description:
      - Keep a history next to the report, C(<basename>-history.jsonl) (JSON Lines), and carry each
        host's change since its previous record in the report (C(change) in the JSON, C(previous_run),
        C(cache_bytes_change) and C(reclaimable_bytes_change) in the CSV).
      - Each run that writes the report appends one record per host - C(run) (an id), C(time) (the
        report's C(generated)), C(host), C(status), C(cache_bytes), C(reclaimable_bytes) (null when the
        host gave no facts). A check run without C(check_mode=false) reads the history but adds nothing.
      - Report jobs finishing at the same time (AWX slices) are safe - each locks the file for its
        read and append. A line that is not a record (a hand edit, a writer killed mid-line) is skipped
        with a warning naming the line.
    type: bool
    default: true
  history_keep:
    description: How many runs the history keeps; older runs' records are dropped (at least V(1)).
    type: int
    default: 100
  template:
    description:
      - Jinja2 template on the controller for the HTML page. Default is the
        P(pkgcache.fleet.fleet_report#role) role's C(templates/fleet-report.html.j2), which a template
        of yours can extend (an C(extends) tag naming C(fleet-report.html.j2)) to override its blocks
        (C(style), C(header), C(summary), C(trend), C(table), C(environments), C(script)).
      - Autoescaping is on. The variables and filters it sees are listed in the role's README.
    type: path
  near_full:
    description:
      - A host is near full when a filesystem holding one of its caches (the caches' C(filesystem)
        facts) has less available than this - a percentage of its size (V(10%)) or a size (V(20G)).
      - Near-full hosts come first in the summary (C(summary.near_full)) and are marked C(near_full).
    type: str
    default: "10%"
  top:
    description: How many hosts the summary's lists hold (most reclaimable, largest caches, grew most),
      and how many environments its largest and longest-unchanged lists hold.
    type: int
    default: 10
  mode:
    description:
      - V(report) builds the report over O(hosts) from their hostvars and writes it.
      - V(slice), for each slice of an AWX sliced job, writes each host's result - the variables the
        report reads, whether it is still in the play, check mode - to O(results_dir) as
        C(<host>.json) (percent-quoted), atomically (temp file and rename), and no report or history.
      - V(merge) builds the report over O(hosts) from the files of O(results_dir) instead of hostvars,
        and writes it as V(report) does; no host is contacted. A host without a file (its slice did
        not get that far) reads V(no_data), with a warning. Run it after every slice finished, over
        the whole inventory, for one report equal to a single job's.
    type: str
    choices: [report, slice, merge]
    default: report
  results_dir:
    description: Directory the slices and the merge share; needed with O(mode=slice) and O(mode=merge).
    type: path
seealso:
  - module: pkgcache.fleet.conda_cache_facts
  - module: pkgcache.fleet.pip_cache_facts
  - module: pkgcache.fleet.conda_clean
"""

EXAMPLES = r"""
- name: Write the fleet report and publish totals for AWX
  pkgcache.fleet.fleet_report:
    dest: /srv/reports/pkgcache
  run_once: true
  delegate_to: localhost
  check_mode: false
  register: fleet

- name: Hosts that need attention
  ansible.builtin.debug:
    msg: "{{ fleet.report.hosts | rejectattr('status', 'eq', 'ok') | map(attribute='host') }}"
  run_once: true
"""

RETURN = r"""
report:
  description: The whole report, the same structure as the JSON file.
  returned: always
  type: dict
  contains:
    schema:
      description: Version of this structure.
      type: int
      returned: always
      sample: 2
    generated:
      description: UTC time the report was built (ISO 8601).
      type: str
      returned: always
    totals:
      description: >-
        Fleet sums - C(hosts), C(by_status), C(cache_bytes), C(conda_bytes) (conda's and mamba's caches),
        C(pip_bytes) (pip's and uv's), C(tools) (per tool C(hosts), C(caches), C(disk_bytes), C(reclaimable_bytes);
        each tool apart),
        C(reclaimable_bytes), C(planned_bytes), C(freed_bytes), C(reduced_bytes), C(hosts_cleaned), C(hosts_skipped)
        (every cache skipped, or nothing to remove), C(hosts_nothing_to_remove), C(hosts_failed), C(hosts_backed_up), C(backup_bytes_copied), C(check_mode).
      type: dict
      returned: always
    policies:
      description: >-
        Each cleaning policy in force - C(policy), the P(pkgcache.fleet.cache_clean#role) role's
        variables with the values a host ran with - and C(hosts), the hosts it applied to; empty when
        no clean ran.
      type: list
      elements: dict
      returned: always
    hosts:
      description: >-
        One record per host - C(host), C(status), C(error), C(conda), C(pip) and C(rattler) totals (null when
        not gathered), C(cache_bytes), C(reclaimable_bytes), C(clean) (null when cleaning did not run;
        else C(check_mode), C(outcome), C(planned_bytes), C(freed_bytes), C(removed),
        C(caches_skipped), C(before_bytes), C(after_bytes), C(reduced_bytes), C(msg), C(policy)). C(freed_bytes)
        is the free space the filesystems gained (statvfs, moves with other writers too);
        C(reduced_bytes) is how much the caches shrank on disk (before minus after). C(backup) is null
        unless the P(pkgcache.fleet.pkgs_backup#role) role ran, else C(copied), C(already_stored),
        C(unchanged), C(bytes_copied), C(failed), C(manifest). C(change) is null unless the history
        has an earlier record of the host with sizes (see O(history)), else C(since) (that record's
        time), C(cache_bytes) and C(reclaimable_bytes), each now minus then. C(tools) has per tool
        (C(conda), C(pip), and C(mamba), C(rattler), C(uv), ... by each cache's C(tool) field) C(caches),
        C(disk_bytes) and C(reclaimable_bytes), each cache's own figures summed. C(filesystems) are
        the filesystems holding its caches (C(mount), C(total_bytes), C(available_bytes),
        C(available_percent)), C(free) the fullest of them (null when no cache has filesystem facts)
        and C(near_full) whether one is below O(near_full). C(last_clean) is null or C(time), C(how)
        (V(run) - this run's clean, V(scheduled) - the host's own) and C(freed_bytes).
        C(environments) is null unless C(conda_envs) facts (M(pkgcache.fleet.conda_env_facts)) were
        gathered, else C(count), C(unhealthy), C(disk_bytes) and C(rows), one per environment -
        C(host), C(path), C(owner), C(packages), C(disk_bytes), C(exclusive_bytes), C(healthy),
        C(problems) (count per kind), C(last_change) (seconds), C(last_change_date), C(orphans).
      type: list
      elements: dict
      returned: always
    change:
      description: >-
        The fleet's change since the previous run - C(hosts) (how many hosts had an earlier record),
        C(cache_bytes) and C(reclaimable_bytes) summed over those hosts; null when none had.
      type: dict
      returned: always
    trend:
      description: >-
        The fleet per run the history keeps, this run last - C(run), C(time), C(hosts) (with sizes),
        C(cache_bytes), C(reclaimable_bytes); empty with O(history=false).
      type: list
      elements: dict
      returned: always
    summary:
      description: >-
        What needs attention first - C(near_full) (C(threshold), and C(hosts), the fullest first,
        each its fullest filesystem and C(host)), C(top) (O(top)), C(top_reclaimable), C(top_cache)
        and C(top_growth) (C(host), C(bytes), largest first; growth is the change since the last run),
        C(environments) (null without environment facts, else C(hosts), C(count), C(disk_bytes),
        C(unhealthy) - every unhealthy environment, most problems first - C(largest) and C(unchanged),
        the O(top) largest and longest unchanged).
      type: dict
      returned: always
stats:
  description:
    - Flat C(pkgcache_*) totals for M(ansible.builtin.set_stats), and C(pkgcache_check_mode) (true
      when the run was a check run).
  returned: always
  type: dict
  sample: {"pkgcache_hosts": 5, "pkgcache_reclaimable_bytes": 1413120, "pkgcache_hosts_failed": 1,
           "pkgcache_check_mode": false}
history:
  description: The history file (null with O(history=false) and with O(mode=slice)).
  returned: always
  type: str
files:
  description: >-
    Report files written (or that would be written in check mode), the history last; with
    O(mode=slice) the per-host result files.
  returned: always
  type: list
  elements: str
msg:
  description: >-
    One-line summary - hosts by status, cache sizes (each tool apart) and what is reclaimable in
    binary units, what a check run would free or how much the caches shrank, and where the files went.
  returned: always
  type: str
  sample: "10 host(s): 4 no conda, 5 ok, 1 unreachable; caches 1.2 GiB (conda 1.1 GiB, pip 64.0 MiB, uv 32.0 MiB), 600.0 MiB reclaimable"
"""
