# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ground floor: bytes in, escaped text out.

Linux file names and config files are bytes; Python hands names that are not UTF-8 back as
``surrogateescape`` strings (byte 0xff becomes U+DCFF), which round-trip to the same bytes in every
``os`` call, so reading and removing work on the raw name.  Such strings are not valid UTF-8, and the
controller refuses a module result that carries one, losing the whole result.  Everything a module
returns therefore goes through :func:`printable`:

- a byte that is not UTF-8 (U+DC80..U+DCFF) becomes ``\\xNN`` (two lower-case hex digits);
- any other lone surrogate (only JSON can smuggle one in) becomes ``\\uNNNN``;
- a backslash becomes ``\\\\``, so the escaping is unambiguous: :func:`raw` reverses it exactly.

Valid UTF-8 text without a backslash comes back unchanged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

_NEEDS_ESCAPE = re.compile(u"[\\\\\ud800-\udfff]")
_ESCAPE = re.compile(r"\\(\\|x[0-9a-f]{2}|u[0-9a-f]{4})")
# What open() needs to read a config or list whatever its bytes: text, never a UnicodeDecodeError.
READ_TEXT = dict(encoding="utf-8", errors="surrogateescape")


def _escape(match):
    char = match.group(0)
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return "\\x%02x" % (code - 0xDC00)
    return "\\u%04x" % code


def printable(text):
    """*text* as valid UTF-8 text, escaped as the module documentation describes."""
    return _NEEDS_ESCAPE.sub(_escape, text)


def _unescape(match):
    token = match.group(1)
    if token == "\\":
        return "\\"
    if token[0] == "x":
        return chr(0xDC00 + int(token[1:], 16))
    return chr(int(token[1:], 16))


def raw(text):
    """The string :func:`printable` made *text* from (``os.fsencode`` of it gives the raw bytes)."""
    return _ESCAPE.sub(_unescape, text)


def is_clean(text):
    """True when *text* is valid UTF-8 as it is (no escaped bytes in it)."""
    return not re.search(u"[\ud800-\udfff]", text)


def printable_tree(value):
    """*value* (dicts, lists, tuples, strings, scalars) with every string, keys too, made printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return dict((printable_tree(k), printable_tree(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [printable_tree(item) for item in value]
    return value


class Results(object):
    """The one way out of every module: warnings, failures and results leave printable.

    ``Results(module).warn`` is what a module hands to code that warns as it goes.
    """

    def __init__(self, module):
        self.module = module

    def warn(self, message):
        self.module.warn(printable(message))

    def exit(self, warnings=(), **result):
        for message in warnings:
            self.warn(message)
        self.module.exit_json(**printable_tree(result))

    def fail(self, msg, warnings=(), **result):
        for message in warnings:
            self.warn(message)
        self.module.fail_json(msg=printable(msg), **printable_tree(result))


def human_bytes(count):
    """``1536`` -> ``"1.5 KiB"``: for one-line summaries; results keep exact integers.

    Not ansible-core's ``bytes_to_human`` (``"1.50 KB"``): the local command runs this without
    Ansible, and the report, diffs and docs name binary units as such; the unit chosen is the same
    (tested)."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024.0
