# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``pkgcache``: the modules' work on a host with no Ansible (a timer, an image build, a laptop).

It runs the same code as the modules: its flags are the modules' own argument specs (one
vocabulary), the work is ``facts.gather``, ``conda_clean.clean_from_options``,
``pip_clean.clean_from_options`` and ``rattler_clean.clean_from_options``, and what it prints is the modules' result, printable.  Python 3.8+
standard library only.  Run it as
``python3 -m ansible_collections.pkgcache.fleet.plugins.module_utils.local_command`` with the
directory holding ``ansible_collections/`` on ``PYTHONPATH``.

``run`` is what a timer or cron entry starts: a policy file with a section per command
(``{"clean": {...conda_clean options}, "clean-pip": {...pip_cache_clean options},
"clean-rattler": {...rattler_cache_clean options}}``), every
section checked before any runs, each then run in turn; ``--record`` keeps the outcome in a JSON
file (``self_clean``) that the facts, and so the fleet report, pick up.  ``--validate`` only
checks the policy file.

Exit codes: 0 done (or nothing to do), 1 some removals failed (what was removed is still
printed), 2 bad options or policy file (nothing read), 3 refused (the host's state is not fully
known, or a cache was not a cache; nothing removed).  ``run`` exits with the worst of its
sections' codes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import datetime
import json
import sys
import time

from ansible_collections.pkgcache.fleet.plugins.module_utils import (
    cleanup, conda_clean, facts, metrics, pip_clean, rattler_cache, rattler_clean, self_clean)
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import OptionError
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import printable, printable_tree

OK, FAILED_REMOVALS, BAD_OPTIONS, REFUSED = 0, 1, 2, 3

COMMANDS = {
    "facts": ("conda, pip and rattler cache facts (what cache_facts returns)", facts.argument_spec),
    "clean": ("clean conda caches (conda_clean's options)", conda_clean.argument_spec),
    "clean-pip": ("clean pip and uv caches (pip_cache_clean's options)", pip_clean.argument_spec),
    "clean-rattler": ("clean pixi / rattler caches (rattler_cache_clean's options)", rattler_clean.argument_spec),
}
# The sections of a ``run`` policy file, in the order they run.
RUN_SECTIONS = ("clean", "clean-pip", "clean-rattler")
# The cleans whose module code takes ``(params, warn, check_mode)``.
CLEANS = {"clean-pip": pip_clean.clean_from_options, "clean-rattler": rattler_clean.clean_from_options}


class UsageError(Exception):
    pass


def _flag(name):
    return "--" + name.replace("_", "-")


def _add_option(parser, name, spec):
    """One argparse flag from one argument-spec entry; every flag defaults to "not given"."""
    kind = spec.get("type", "str")
    if kind == "bool":
        parser.add_argument(_flag(name), dest=name, action="store_const", const=True, default=None)
    elif kind == "list":
        parser.add_argument(_flag(name), dest=name, nargs="*", default=None, choices=spec.get("choices"),
                            metavar=name.upper())
    elif kind == "dict":
        parser.add_argument(_flag(name), dest=name, action="append", default=None, metavar="NAME=VALUE")
    else:
        parser.add_argument(_flag(name), dest=name, default=None, type=int if kind == "int" else str,
                            choices=spec.get("choices"))


def build_parser():
    parser = argparse.ArgumentParser(prog="pkgcache", description="pkgcache.fleet on this host, without Ansible.")
    commands = parser.add_subparsers(dest="command")
    for command, (text, spec) in sorted(COMMANDS.items()):
        sub = commands.add_parser(command, help=text)
        sub.add_argument("--policy", help="a JSON file of options (the module's names); flags override it")
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        if command != "facts":
            sub.add_argument("--check", action="store_true", help="plan only: say what would be removed")
            sub.add_argument("--record", metavar="FILE", help="also write the outcome to this JSON file (%s)" % self_clean.RECORD_PATH)
        for name, option in sorted(spec().items()):
            _add_option(sub, name, option)
    sub = commands.add_parser("run", help="what a schedule runs: each section of a policy file (%s)" % ", ".join(RUN_SECTIONS))
    sub.add_argument("--policy", required=True,
                     help='a JSON file {"clean": {options}, "clean-pip": {options}, "clean-rattler": {options}}')
    sub.add_argument("--json", action="store_true", help="print the results as JSON, one key per section")
    sub.add_argument("--check", action="store_true", help="plan only: say what would be removed")
    sub.add_argument("--record", metavar="FILE", help="also write the outcome to this JSON file (%s)" % self_clean.RECORD_PATH)
    sub.add_argument("--validate", action="store_true", help="only check the policy file (exit 0 or 2)")
    sub.add_argument("--metrics-dir", metavar="DIR",
                     help="also write node_exporter's textfile %s there: the caches after the run, what it freed"
                     % metrics.FILENAME)
    return parser


def _read_policy(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, IOError, ValueError) as exc:
        raise UsageError("cannot read the policy file %s: %s" % (path, exc))


# JSON types of the argument-spec types a policy file may give.
_JSON_TYPES = {"str": str, "path": str, "int": int, "bool": bool, "list": list, "dict": dict}


def _checked(name, value, option, source):
    """*value* of option *name* from a policy file, refused (UsageError) when its JSON type or a
    choice is not what the module's argument spec takes: flags are typed by argparse, a file is not."""
    kind = option.get("type", "str")
    if value is None and option.get("default") is None:
        return value
    expected = _JSON_TYPES.get(kind, object)
    if not isinstance(value, expected) or (kind == "int" and isinstance(value, bool)):
        raise UsageError("%s: %s takes a %s, not %s" % (source, name, kind, json.dumps(value)))
    choices = option.get("choices")
    wrong = [item for item in (value if kind == "list" else [value]) if choices and item not in choices]
    if wrong:
        raise UsageError("%s: %s: %s is not one of %s" % (source, name, ", ".join(map(str, wrong)), ", ".join(choices)))
    return value


def _with_policy(command, policy, source):
    """The module's defaults updated from *policy* (options by the module's names)."""
    spec = COMMANDS[command][1]()
    params = dict((name, option.get("default")) for name, option in spec.items())
    unknown = sorted(set(policy) - set(spec)) if isinstance(policy, dict) else ["(not a JSON object)"]
    if unknown:
        raise UsageError("%s: unknown option(s) %s; valid: %s" % (source, ", ".join(unknown), ", ".join(sorted(spec))))
    params.update((name, _checked(name, value, spec[name], source)) for name, value in policy.items())
    return params


def params_from(command, args):
    """The module's parameters: defaults, then the policy file, then the flags."""
    spec = COMMANDS[command][1]()
    params = _with_policy(command, _read_policy(args.policy) if args.policy else {}, args.policy)
    for name, option in spec.items():
        value = getattr(args, name)
        if value is None:
            continue
        if option.get("type") == "dict":
            pairs = [item.split("=", 1) for item in value]
            if any(len(pair) != 2 for pair in pairs):
                raise UsageError("%s takes NAME=VALUE" % _flag(name))
            value = dict(pairs)
        params[name] = value
    return params


def validate(command, params):
    """OptionError for what the command would refuse before reading anything (values as well as
    names: durations, sizes, the pip mode)."""
    if command == "clean":
        conda_clean.policy_from(params)
    elif command == "clean-pip":
        pip_clean.Request.from_options(params["purge"], params["patterns"], params["min_age"], params["uv"],
                                       params["include_selfcheck"])
    elif command == "clean-rattler":
        rattler_cache.Search.from_options(params)
        cleanup.Target.from_options(params)


def run_sections(path):
    """``[(command, params)]`` of a ``run`` policy file, each checked; UsageError or OptionError
    naming the section otherwise."""
    policy = _read_policy(path)
    if not isinstance(policy, dict) or not policy:
        raise UsageError("%s: expected a JSON object with one or more of the sections %s" % (path, ", ".join(RUN_SECTIONS)))
    unknown = sorted(set(policy) - set(RUN_SECTIONS))
    if unknown:
        raise UsageError("%s: unknown section(s) %s; valid: %s" % (path, ", ".join(unknown), ", ".join(RUN_SECTIONS)))
    sections = []
    for command in RUN_SECTIONS:
        if command in policy:
            params = _with_policy(command, policy[command], "%s [%s]" % (path, command))
            try:
                validate(command, params)
            except OptionError as exc:
                raise OptionError("%s [%s]: %s" % (path, command, exc))
            sections.append((command, params))
    return sections


def run_guarded(command, params, check_mode, warn):
    """:func:`run`, with a refusal or an option the module code rejects turned into a result and
    its exit code, so one section's refusal does not stop the next."""
    try:
        return run(command, params, check_mode, warn)
    except OptionError as exc:
        return {"msg": "bad options: %s" % exc, "caches": [], "removed": [], "errors": []}, BAD_OPTIONS
    except ValueError as exc:
        return {"msg": "refused: %s" % exc, "caches": [], "removed": [], "errors": []}, REFUSED


def run(command, params, check_mode, warn):
    """``(result, exit code)`` of one command over the module code."""
    if command == "facts":
        return facts.gather(facts.select(params), params, params["gather"], warn), OK
    if command == "clean":
        result, warnings = conda_clean.clean_from_options(params, check_mode)
        for warning in warnings:
            warn(warning)
    else:
        result = CLEANS[command](params, warn, check_mode)
    failed = result.get("errors") or cleanup.broken_environments(result)
    return result, FAILED_REMOVALS if failed else OK


def compacted(params, result):
    """The JSON a ``--compact`` run prints: counts for per-item lists, as the modules return."""
    if not params.get("compact") or "caches" not in result:
        return result
    return dict(result, caches=[cleanup.compact(cache) for cache in result["caches"]])


def human(command, result):
    """The lines a person reads: the summary, then what goes per cache (or the facts' totals)."""
    if command == "facts":
        lines = []
        for name, part in sorted(result.items()):
            lines.append("%s: %s" % (name, part.get("summary") or json.dumps(part.get("totals"), sort_keys=True)))
            lines.extend("  incomplete: %s" % reason for reason in part.get("incomplete_reasons", []))
        return lines
    lines = [result["msg"]]
    for cache in result["caches"]:
        state = "skipped: %s" % cache["skipped"] if cache["skipped"] else "%d to remove" % len(cache["remove"])
        lines.append("  %s (%s): %s" % (cache["path"], cache["kind"], state))
        lines.extend("    " + cleanup.describe(item) for item in cache["remove"])
    lines.extend("  " + cleanup.describe_target(summary) for summary in result.get("target") or [])
    lines.extend("  error: %s" % error for error in result.get("errors", []))
    return lines


def main(argv=None, out=None, err=None):
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(err)
        return BAD_OPTIONS
    check_mode = getattr(args, "check", False)

    def warn(message):
        err.write("warning: %s\n" % printable(message))

    record = getattr(args, "record", None)
    if args.command == "run":
        return main_run(args, out, err, warn)
    try:
        params = params_from(args.command, args)
        result, code = run(args.command, params, check_mode, warn)
    except (UsageError, OptionError) as exc:
        err.write("pkgcache: %s\n" % printable(str(exc)))
        return _recorded(record, {args.command: ({"msg": str(exc)}, BAD_OPTIONS)}, check_mode, BAD_OPTIONS)
    except ValueError as exc:
        err.write("pkgcache: refused: %s\n" % printable(str(exc)))
        return _recorded(record, {args.command: ({"msg": "refused: %s" % exc}, REFUSED)}, check_mode, REFUSED)
    result = printable_tree(result)
    if args.json:
        out.write(json.dumps(compacted(params, result), sort_keys=True) + "\n")
    else:
        out.write("".join(line + "\n" for line in human(args.command, result)))
    return _recorded(record, {args.command: (result, code)}, check_mode, code)


def _recorded(path, outcomes, check_mode, code):
    """Write the record of *outcomes* (``{command: (result, code)}``) when asked; returns *code*."""
    if path:
        runs = dict((command, self_clean.command_record(printable_tree(result), done))
                    for command, (result, done) in outcomes.items())
        self_clean.write(path, self_clean.build(runs, check_mode))
    return code


def main_run(args, out, err, warn):
    """``run``: check every section, then run each; the worst exit code."""
    try:
        sections = run_sections(args.policy)
    except (UsageError, OptionError) as exc:
        err.write("pkgcache: %s\n" % printable(str(exc)))
        if args.validate:
            return BAD_OPTIONS
        return _recorded(args.record, {"run": ({"msg": "policy refused: %s" % exc}, BAD_OPTIONS)}, args.check,
                         BAD_OPTIONS)
    if args.validate:
        out.write("policy ok: %s\n" % ", ".join(command for command, _params in sections))
        return OK
    outcomes = {}
    for command, params in sections:
        result, code = run_guarded(command, params, args.check, warn)
        outcomes[command] = (printable_tree(result), code)
    code = max(done for _result, done in outcomes.values())
    if args.json:
        policy = dict(sections)
        out.write(json.dumps(dict((command, compacted(policy[command], result))
                                  for command, (result, _done) in outcomes.items()), sort_keys=True) + "\n")
    else:
        stamp = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
        lines = ["pkgcache run %s%s, policy %s" % (stamp, " (check: nothing removed)" if args.check else "", args.policy)]
        for command, (result, done) in outcomes.items():
            body = human(command, result) if result.get("caches") or done == OK else [result["msg"]]
            lines.append("%s: %s" % (command, body[0]))
            lines.extend(body[1:])
        out.write("".join(line + "\n" for line in lines))
    if args.metrics_dir:
        write_metrics(args.metrics_dir, dict(sections), [result for result, _done in outcomes.values()], args.check, warn)
    return _recorded(args.record, outcomes, args.check, code)


def write_metrics(directory, sections, cleaned, check_mode, warn):
    """The textfile after a scheduled run: every cache as the facts see it now (all users; conda,
    pip and uv, and rattler when the run cleaned it, searched as its section says), and the cleans
    that just ran (*sections*: the run's ``{command: params}``); a check run writes nothing."""
    policy = {}
    if "clean-rattler" in sections:
        policy = dict((name, sections["clean-rattler"][name]) for name in rattler_cache.SEARCH)
        policy["gather"] = list(facts.KINDS + (facts.RATTLER,))
    found, _code = run("facts", _with_policy("facts", policy, directory), False, warn)
    metrics.write_textfile(directory, printable_tree(found), cleaned, time.time(), check_mode)


if __name__ == "__main__":
    raise SystemExit(main())
