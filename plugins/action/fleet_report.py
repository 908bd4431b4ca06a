# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for ``pkgcache.fleet.fleet_report``: read every play host's hostvars on the controller,
fold them into one report and write it in the requested formats.  Glue only: the model lives in
``plugin_utils/_report.py`` and the rendering in ``plugin_utils/_render.py``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import os

from ansible.plugins.action import ActionBase

from ansible_collections.pkgcache.fleet.plugins.module_utils._durable import write_atomic
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import OptionError, parse_free_threshold
from ansible_collections.pkgcache.fleet.plugins.plugin_utils import _history, _render, _report, _slices

ARGUMENT_SPEC = dict(
    dest=dict(type="path"),
    formats=dict(type="list", elements="str", default=list(_render.RENDERERS),
                 choices=list(_render.RENDERERS)),
    basename=dict(type="str", default="fleet-report"),
    title=dict(type="str", default="pkgcache.fleet cache report"),
    hosts=dict(type="list", elements="str"),
    active_hosts=dict(type="list", elements="str"),
    history=dict(type="bool", default=True),
    history_keep=dict(type="int", default=100),
    template=dict(type="path"),
    near_full=dict(type="str", default="10%"),
    top=dict(type="int", default=10),
    mode=dict(type="str", default="report", choices=["report", "slice", "merge"]),
    results_dir=dict(type="path"),
)

# Only these hostvars are read; the rest of a host's variables never enter the report.
WANTED_VARS = _report.RESULT_VARS + (_report.CLEAN_BEFORE_VAR, _report.CLEAN_CHECK_MODE_VAR,
                                     _report.CLEAN_POLICY_VAR)
WANTED_FACTS = _report.CACHE_FACT_NAMES + (_report.SELF_CLEAN_FACT, _report.ENV_FACT)

DEFAULT_DIRNAME = "pkgcache-report"
# ansible-runner (and so AWX) names the job's artifacts directory in this variable; its own
# callback writes the job events there.
RUNNER_ARTIFACTS_VAR = "AWX_ISOLATED_DATA_DIR"


def default_dest(environ, cwd):
    """Where the report goes when no directory is given: never inside the collection, which a
    reinstall replaces and an execution environment may hold read-only.

    Under ansible-runner (AWX) the job's artifacts directory, kept with the job's other
    artifacts; otherwise the directory ``ansible-playbook`` was started from, as other tools
    leave their output where the operator works.
    """
    base = environ.get(RUNNER_ARTIFACTS_VAR) or cwd
    return os.path.join(base, DEFAULT_DIRNAME)


def host_view(hostvars):
    """A plain dict with just the variables the report model reads."""
    view = dict((name, hostvars[name]) for name in WANTED_VARS if name in hostvars)
    facts = hostvars["ansible_facts"] if "ansible_facts" in hostvars else {}
    view["ansible_facts"] = dict((name, facts[name]) for name in WANTED_FACTS if name in facts)
    return view


def produce(views, active, args, dest, check_mode, writing, warn):
    """The report over *views* (``[(host, host_view)]``) and the files it goes to; with *writing*
    the files are written and the history appended.  Everything the action does but read hostvars."""
    report = _report.build(views, active, args["title"], check_mode=check_mode)
    files = [os.path.join(dest, "%s.%s" % (args["basename"], _render.EXTENSIONS[fmt])) for fmt in args["formats"]]
    history = _history.path_for(dest, args["basename"]) if args["history"] else None
    if writing:
        os.makedirs(dest, exist_ok=True)
    # Read (and with the files, appended to) before rendering: the files carry the changes.
    if history and (writing or os.path.exists(history)):
        _history.update(history, report, args["history_keep"], warn, append=writing)
    _report.summarize(report, args["near_full"], args["top"])
    if writing:
        renderers = dict(_render.RENDERERS, html=functools.partial(_render.to_html, template=args["template"]))
        for fmt, path in zip(args["formats"], files):
            # Readers (a web server, a browser refresh) never see a half-written report.
            write_atomic(path, renderers[fmt](report), keep_existing=False)
    return report, files, history


def check_args(args):
    """*args* with ``near_full`` parsed; an error message for a bad value, else None."""
    if args["history_keep"] < 1:
        return "history_keep must be at least 1, got %d" % args["history_keep"]
    if args["mode"] != "report" and not args["results_dir"]:
        return "mode=%s needs results_dir, the directory every slice shares" % args["mode"]
    if args["top"] < 1:
        return "top must be at least 1, got %d" % args["top"]
    if args["template"] is not None and not os.path.isfile(args["template"]):
        return "template %s is not a file on the controller" % args["template"]
    try:
        args["near_full"] = parse_free_threshold(args["near_full"], "near_full")
    except OptionError as exc:
        return str(exc)
    return None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(ActionModule, self).run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        error = check_args(args)
        if error:
            return dict(result, failed=True, msg=error)

        hosts = args["hosts"] if args["hosts"] is not None else task_vars.get("ansible_play_hosts_all", [])
        active = args["active_hosts"] if args["active_hosts"] is not None else task_vars.get("ansible_play_hosts", [])
        # ansible_check_mode is the run's --check (a check job template), also on this task,
        # which the role runs with check_mode=false so that a preview report is written.
        check_mode = bool(task_vars.get("ansible_check_mode")) or self._play_context.check_mode
        writing = not self._play_context.check_mode
        warnings = []
        if args["mode"] == "merge":
            views, active, sliced_check_mode = _slices.read(args["results_dir"], hosts, warnings.append)
            check_mode = check_mode or sliced_check_mode
        else:
            all_hostvars = task_vars["hostvars"]
            views = [(name, host_view(all_hostvars[name]) if name in all_hostvars else {}) for name in hosts]
        if args["mode"] == "slice":
            report = _report.build(views, active, args["title"], check_mode=check_mode)
            files = _slices.write(args["results_dir"], views, active, check_mode) if writing else []
            result.update(changed=writing, report=report, stats=_report.stats(report), files=files, history=None,
                          warnings=warnings, msg="%d host result(s) for the merge in %s" % (len(views), args["results_dir"]))
            return result
        dest = os.path.abspath(args["dest"] or default_dest(os.environ, os.getcwd()))
        report, files, history = produce(views, active, args, dest, check_mode, writing, warnings.append)
        result.update(
            changed=not self._play_context.check_mode,
            report=report,
            stats=_report.stats(report),
            files=files + ([history] if history else []),
            history=history,
            warnings=warnings,
            msg=_render.summary_message(report, None if self._play_context.check_mode else dest),
        )
        return result
