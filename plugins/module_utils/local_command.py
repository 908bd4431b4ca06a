# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``pkgcache``: the modules' work on a host with no Ansible (a timer, an image build, a laptop).

It runs the same code as the modules: its flags are the modules' own argument specs (one
vocabulary), the work is ``facts.gather``, ``conda_clean.clean_from_options`` and
``pip_clean.clean_from_options``, and what it prints is the modules' result, printable.  Python 3.8+
standard library only.  Run it as
``python3 -m ansible_collections.pkgcache.fleet.plugins.module_utils.local_command`` with the
directory holding ``ansible_collections/`` on ``PYTHONPATH``.

Exit codes: 0 done (or nothing to do), 1 some removals failed (what was removed is still
printed), 2 bad options or policy file (nothing read), 3 refused (the host's state is not fully
known, or a cache was not a cache; nothing removed).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import sys

from ansible_collections.pkgcache.fleet.plugins.module_utils import cleanup, conda_clean, facts, pip_clean
from ansible_collections.pkgcache.fleet.plugins.module_utils.options import OptionError
from ansible_collections.pkgcache.fleet.plugins.module_utils._text import printable, printable_tree

OK, FAILED_REMOVALS, BAD_OPTIONS, REFUSED = 0, 1, 2, 3

COMMANDS = {
    "facts": ("conda and pip cache facts (what cache_facts returns)", facts.argument_spec),
    "clean": ("clean conda caches (conda_clean's options)", conda_clean.argument_spec),
    "clean-pip": ("clean pip and uv caches (pip_cache_clean's options)", pip_clean.argument_spec),
}


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
        for name, option in sorted(spec().items()):
            _add_option(sub, name, option)
    return parser


def params_from(command, args):
    """The module's parameters: defaults, then the policy file, then the flags."""
    spec = COMMANDS[command][1]()
    params = dict((name, option.get("default")) for name, option in spec.items())
    if args.policy:
        try:
            with open(args.policy) as handle:
                policy = json.load(handle)
        except (OSError, IOError, ValueError) as exc:
            raise UsageError("cannot read the policy file %s: %s" % (args.policy, exc))
        unknown = sorted(set(policy) - set(spec)) if isinstance(policy, dict) else ["(not a JSON object)"]
        if unknown:
            raise UsageError("%s: unknown option(s) %s; valid: %s" % (args.policy, ", ".join(unknown), ", ".join(sorted(spec))))
        params.update(policy)
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


def run(command, params, check_mode, warn):
    """``(result, exit code)`` of one command over the module code."""
    if command == "facts":
        return facts.gather(facts.select(params), params, params["gather"], warn), OK
    if command == "clean":
        result, warnings = conda_clean.clean_from_options(params, check_mode)
        for warning in warnings:
            warn(warning)
    else:
        result = pip_clean.clean_from_options(params, warn, check_mode)
    return result, FAILED_REMOVALS if result.get("errors") else OK


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

    try:
        params = params_from(args.command, args)
        result, code = run(args.command, params, check_mode, warn)
    except (UsageError, OptionError) as exc:
        err.write("pkgcache: %s\n" % printable(str(exc)))
        return BAD_OPTIONS
    except ValueError as exc:
        err.write("pkgcache: refused: %s\n" % printable(str(exc)))
        return REFUSED
    result = printable_tree(result)
    if args.json:
        out.write(json.dumps(result, sort_keys=True) + "\n")
    else:
        out.write("".join(line + "\n" for line in human(args.command, result)))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
