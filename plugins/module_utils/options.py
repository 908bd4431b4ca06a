# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option vocabulary every module shares.

- Argument-spec pieces, each documented by the doc fragment named next to it
  (``plugins/doc_fragments/``); a module builds its spec with :func:`argument_spec`.
- One user selector (:func:`select_users`): a name the passwd database does not have is an
  error naming it, in every module.
- One parser per kind of value users write in policies: durations (``7d``; a bare number other
  than ``0`` is refused), sizes (``20G``) and free-space thresholds (``10%`` or a size), each with
  the formatter that writes a value back the way the parser reads it.

Modules call these before they read or change anything and fail with the :class:`OptionError`'s
text, so a typo never gets as far as a cache.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import grp
import os
import pwd
import re

from ansible_collections.pkgcache.fleet.plugins.module_utils import _accounts
from ansible_collections.pkgcache.fleet.plugins.module_utils._accounts import (
    passwd_user, passwd_users, with_homes)


class OptionError(ValueError):
    """An option value a module refuses; the text says which option and why."""


# -- argument-spec pieces ----------------------------------------------------------------------

# Fragment pkgcache.fleet.users (section conda or pip for what the users select there).
USERS = dict(users=dict(type="list", elements="str", default=[]))
# Fragment pkgcache.fleet.environment (section conda or pip for the variables read there).
ENVIRONMENT = dict(environment=dict(type="dict", default={}))
# Fragment pkgcache.fleet.conda_caches: which conda caches a module works on.
CONDA_CACHES = dict(
    roots=dict(type="list", elements="path", default=[]),
    pkgs_dirs=dict(type="list", elements="path", default=[]),
)
# Fragment pkgcache.fleet.conda_facts, section roots: extra roots alone (conda_env_facts).
ROOTS = dict(roots=CONDA_CACHES["roots"])
# Fragment pkgcache.fleet.conda_facts (and its section roots): what the conda cache facts cover.
CONDA_FACTS = dict(
    ROOTS,
    env_sizes=dict(type="bool", default=False),
    list_packages=dict(type="bool", default=True),
)
# Fragment pkgcache.fleet.skip_without_conda.
SKIP_WITHOUT_CONDA = dict(skip_without_conda=dict(type="bool", default=False))
NO_CONDA = "no conda installation on this host; skipped (skip_without_conda)"
# Fragment pkgcache.fleet.workers; checked by check_workers.
WORKERS = dict(workers=dict(type="int", default=2))

COMPACT = dict(compact=dict(type="bool", default=False))
# Who owns a directory a relocating module makes, and its mode: read by new_directory.
NEW_DIRECTORY = dict(owner=dict(type="str"), group=dict(type="str"), mode=dict(type="raw"))
# Fragment pkgcache.fleet.verify_environments: check the environments a cleanup touched.
VERIFY_ENVIRONMENTS = dict(verify_environments=dict(type="bool", default=False))


def duration(default=None):
    """A duration option (fragment pkgcache.fleet.policy_values says how it is written; parse_duration reads it)."""
    return _text_option(default)


def size(default=None):
    """A size or free-space threshold option (fragment pkgcache.fleet.policy_values; parse_size, parse_free_threshold)."""
    return _text_option(default)


def _text_option(default):
    option = dict(type="str")
    if default is not None:
        option["default"] = default
    return option


# Fragment pkgcache.fleet.target: clean to a target (read by cleanup.Target.from_options).
TARGET = dict(target_free=size(), max_cache_size=size())


def argument_spec(*blocks, **own):
    """One module's ``argument_spec``: the shared *blocks* above and the module's *own* options.

    Every option is a fresh copy, so no module shares a default list with another; an option
    named twice is a programming error.
    """
    spec = {}
    for block in blocks + (own,):
        for name, option in block.items():
            if name in spec:
                raise ValueError("option %s is defined twice" % name)
            spec[name] = copy.deepcopy(option)
    return spec


# -- users -------------------------------------------------------------------------------------


def select_users(names):
    """The passwd accounts the ``users`` option names, in its order; every account when it is
    empty or null.

    A name the passwd database does not have is an error naming every such name: working for a
    user who is not there is a typo, not a policy, and leaving the user out would silently change
    which environments protect which packages.
    """
    if not names:
        return passwd_users()
    found, unknown = [], []
    for name in names:
        try:
            found.append(passwd_user(name))
        except KeyError:
            unknown.append(name)
    if unknown:
        raise OptionError("unknown user(s): %s (not in the passwd database)" % ", ".join(unknown))
    return found


def select_homes(names):
    """:func:`select_users`, then only the accounts whose home exists, each home once: the
    homes conda modules look into."""
    return with_homes(select_users(names))


def select_user(name):
    """The one passwd account *name* (options like ``user`` and ``owner``)."""
    return select_users([name])[0]


def blind_spot(accounts):
    """Why a run cannot see everything of ``accounts``, or None: without root (no become) other
    users' homes, configs, environments and caches are not all readable."""
    me = os.geteuid()
    if me == 0 or all(user.uid == me for user in accounts):
        return None
    return ("not running as root (use become: true): the homes, configs, environments and caches of other "
            "users cannot all be read")


def check_sight(accounts):
    """Refuse a cleaning run that cannot see every account it acts for: packages or files their
    unseen environments use would look unused.  Acting for one's own account alone is fine."""
    blind = blind_spot(accounts)
    if blind:
        me = pwd.getpwuid(os.geteuid()).pw_name
        raise OptionError("%s, so what they use could look unused; refusing to clean. Run with become: true, or "
                          "set users: [%s] to clean for %s alone." % (blind, me, me))


def superuser():
    """The account of uid 0: whose view a system-scope option is resolved in."""
    return _accounts.superuser()


def group_id(name):
    """The gid of group *name* (options like ``group``)."""
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise OptionError("unknown group: %s (not in the group database)" % name)


def new_directory(params, owner=None):
    """``(uid, gid, mode)`` of a directory a module makes, from its ``owner``, ``group`` and
    ``mode`` options (``'0775'`` is octal); ``owner`` (an account) stands in for those not given,
    None leaves them to whoever makes the directory."""
    uid = select_user(params["owner"]).uid if params["owner"] else (owner.uid if owner else None)
    gid = group_id(params["group"]) if params["group"] else (owner.gid if owner else None)
    mode = params["mode"]
    if mode is not None and not isinstance(mode, int):
        mode = int(str(mode), 8)
    return uid, gid, mode


def shell_environment(values):
    """The ``environment`` option as the users' shells would have it: names and values as
    strings, a variable set to null unset (not the string ``None``)."""
    return dict((str(name), str(value)) for name, value in values.items() if value is not None)


def check_workers(value):
    """``workers``: 1 or more (0 or fewer would do nothing, or wait forever)."""
    if value is None or value < 1:
        raise OptionError("workers must be 1 or more, not %s" % value)
    return value


# -- durations, sizes, thresholds -------------------------------------------------------------

DURATION_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
SIZE_UNITS = (("T", 1024 ** 4), ("G", 1024 ** 3), ("M", 1024 ** 2), ("K", 1024))
_SECONDS = dict(DURATION_UNITS)
_BYTES = dict((unit.lower(), factor) for unit, factor in SIZE_UNITS + (("b", 1),))
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*$", re.I)


def parse_duration(text, option):
    """``"7d"``, ``"12h"``, ``"30m"``, ``"90s"``, ``"2w"`` -> seconds; ``"0"`` -> 0; None stays None.

    A bare number other than 0 is refused: days and seconds are both plausible readings, and
    the wrong one empties a cache.
    """
    if text is None:
        return None
    match = _DURATION.match(str(text))
    if not match:
        raise OptionError("%s: %r is not a duration (like 7d, 12h, 30m)" % (option, text))
    number, unit = match.groups()
    if not unit and float(number) != 0:
        raise OptionError("%s=%s has no unit: write %sd for days or %ss for seconds" % (option, text, text, text))
    return float(number) * _SECONDS[unit or "s"]


def format_duration(seconds):
    """Seconds in the largest unit that holds them whole (``"7d"``, ``"90s"``); parse_duration reads it back.

    Weeks are read, not written: plans say "older than 14d", as the policy most likely did."""
    for unit, factor in DURATION_UNITS[1:]:
        if seconds >= factor and seconds % factor == 0:
            return "%d%s" % (seconds // factor, unit)
    return _decimal(seconds) + "s"


def parse_size(text, option):
    """``"20G"``, ``"500M"``, ``"1.5GiB"``, ``"1024"`` -> bytes (binary units; a bare number is bytes),
    to the nearest byte.  Not ansible-core's ``human_to_bytes``: the local command runs this without
    Ansible, and that one refuses ``GiB`` and ``gb``; where both read a size they agree (tested)."""
    if text is None:
        return None
    match = _SIZE.match(str(text))
    if not match:
        raise OptionError("%s: %r is not a size (like 20G, 500M)" % (option, text))
    return int(round(float(match.group(1)) * _BYTES.get(match.group(2).lower(), 1)))


def format_size(count):
    """Bytes in the largest binary unit that holds them whole (``"20G"``, ``"1536"``)."""
    for unit, factor in SIZE_UNITS:
        if count >= factor and count % factor == 0:
            return "%d%s" % (count // factor, unit)
    return "%d" % count


def parse_free_threshold(text, option):
    """``"10%"`` -> ("percent", 10.0); ``"5G"`` -> ("bytes", 5368709120); None stays None."""
    if text is None:
        return None
    text = str(text).strip()
    if not text.endswith("%"):
        return ("bytes", parse_size(text, option))
    try:
        value = float(text[:-1])
    except ValueError:
        raise OptionError("%s: %r is not a percentage" % (option, text))
    if not 0 <= value <= 100:
        raise OptionError("%s: %r is not between 0%% and 100%%" % (option, text))
    return ("percent", value)


def format_free_threshold(threshold):
    """``("percent", 10.0)`` -> ``"10%"``; ``("bytes", n)`` as :func:`format_size` writes it."""
    kind, value = threshold
    return _decimal(value) + "%" if kind == "percent" else format_size(value)


def _decimal(number):
    """A number in plain decimals, never with an exponent (``1e-05``), which the parsers do not read."""
    if number == int(number):
        return "%d" % number
    text = repr(float(number))
    return text if "e" not in text else ("%.20f" % number).rstrip("0")
