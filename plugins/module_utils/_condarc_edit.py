# -*- coding: utf-8 -*-
# Copyright: pkgcache.fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change one top-level sequence key of a ``.condarc`` and leave every other byte alone.

Managed hosts have no YAML library, and a round trip through one would drop comments, reorder keys
and lose conda's ``#!final`` / ``#!top`` / ``#!bottom`` markers anyway.  So the file is edited as
lines: the key's block (its ``key:`` line and the item lines under it) is replaced, the key line's
comment (a ``#!final`` marker, say) is kept, an item that stays keeps its own comment, and comment
lines inside the block survive.  The result is re-parsed with the same parser conda resolution
uses before anyone writes it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.pkgcache.fleet.plugins.module_utils import _condarc

DEFAULT_INDENT = "  - "
_ITEM = re.compile(r"^(\s*-)(\s+|$)")
# Plain scalars that YAML (or conda's reader, which opens a quote at any quote character) would
# take for something else.
_NEEDS_QUOTES = re.compile(r"^[\s\-?:,\[\]{}#&*!|>%@`]|['\"]|: |\s#|\s$|^$|^(~|null|Null|NULL|true|false|yes|no)$")


class EditError(ValueError):
    """The file cannot be edited safely; the message names the file."""


class _Block(object):
    """Where the key's block sits in the file's lines, and what is in it."""

    def __init__(self, start, end, key_comment, indent, items):
        self.start = start  # index of the key line
        self.end = end  # index after the last line of the block
        self.key_comment = key_comment  # the key line's comment, verbatim (may be empty)
        self.indent = indent  # "  - " as the file writes its items
        self.items = items  # [(value, comment, [comment lines before it])]


def _split_comment(line):
    """``(content, comment)`` of one line; the comment keeps its leading whitespace."""
    content, _marker = _condarc._strip_comment(line)
    return content, line[len(content):].rstrip("\r\n")


def _is_top_level(content):
    return bool(content) and not content[0].isspace() and not _ITEM.match(content)


def _find_block(lines, key, source):
    """Locate ``key``'s block, or return None when the file does not set it.

    The file is parsed first: a file conda would reject is not edited.
    """
    try:
        _condarc.parse_condarc("".join(lines), source=source, keys=set([key]))
    except _condarc.CondarcError as exc:
        raise EditError("refusing to edit a malformed file: %s" % exc)
    for index, line in enumerate(lines):
        content, comment = _split_comment(line)
        match = _condarc._KEY.match(content) if _is_top_level(content) else None
        if not match or match.group(1) != key:
            continue
        value = (match.group(2) or "").strip()
        items, pending, indent, end = [], [], None, index + 1
        if value:
            if not value.startswith("["):
                raise EditError("%s: %s is not a list (%r)" % (source, key, value))
            items = [(v, "", []) for v in _condarc._flow_sequence(value)]
        for cursor in range(index + 1, len(lines)):
            body, item_comment = _split_comment(lines[cursor])
            if not body.strip():
                if lines[cursor].strip():
                    pending.append(lines[cursor].rstrip("\r\n"))
                continue
            if _is_top_level(body) or value:
                break
            item = _ITEM.match(body)
            if not item:
                raise EditError("%s:%d: expected a '- item' under %s" % (source, cursor + 1, key))
            indent = indent or body[: item.end()]
            items.append((_condarc._scalar(body[item.end():]), item_comment, pending))
            pending, end = [], cursor + 1
        # Comment lines after the last item belong to whatever follows, not to this block.
        return _Block(index, end, comment, indent or DEFAULT_INDENT, items)
    return None


def read_items(text, key="pkgs_dirs", source="<string>"):
    """The values ``key`` lists in this file, or None when the file does not set it."""
    block = _find_block(text.splitlines(True), key, source)
    return None if block is None else [value for value, _c, _p in block.items]


def quote(value):
    """``value`` as a YAML scalar conda's reader gives back unchanged."""
    if not _NEEDS_QUOTES.search(value):
        return value
    if "'" not in value:
        return "'%s'" % value
    if '"' not in value:
        return '"%s"' % value
    raise EditError("cannot write %r as a YAML scalar" % value)


def _render(key, block, values):
    """The block's new lines: kept items keep their comments, comment lines are never dropped."""
    old = dict((value, (comment, before)) for value, comment, before in block.items) if block else {}
    indent = block.indent if block else DEFAULT_INDENT
    lines = ["%s:%s\n" % (key, block.key_comment if block else "")]
    for value in values:
        comment, before = old.pop(value, ("", []))
        lines.extend(c + "\n" for c in before)
        lines.append("%s%s%s\n" % (indent, quote(value), comment))
    # Comments of items that are gone stay in the file.
    for value, _comment, before in (block.items if block else ()):
        if value in old:
            lines.extend(c + "\n" for c in before)
    return lines


def _dropped_block_comments(block):
    return [c + "\n" for _value, _comment, before in block.items for c in before]


def set_items(text, values, key="pkgs_dirs", source="<string>"):
    """``text`` with ``key`` set to ``values`` (None removes the key); nothing else changes.

    The result is parsed again and must give back exactly ``values``.
    """
    lines = text.splitlines(True)
    block = _find_block(lines, key, source)
    if values is None:
        if block is None:
            return text
        new_lines = lines[: block.start] + _dropped_block_comments(block) + lines[block.end:]
    elif block is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        new_lines = lines + _render(key, None, values)
    else:
        if block.end == len(lines) and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        new_lines = lines[: block.start] + _render(key, block, values) + lines[block.end:]
    result = "".join(new_lines)
    _check(result, key, values, source)
    return result


def _check(text, key, values, source):
    try:
        parsed = _condarc.parse_condarc(text, source=source, keys=set([key]))
    except _condarc.CondarcError as exc:
        raise EditError("the edited file would not parse: %s" % exc)
    found = parsed.get(key)
    got = None if found is None else [value for value, _marker in found.items]
    if got != (None if values is None else list(values)):
        raise EditError("%s: editing %s gave %r instead of %r" % (source, key, got, values))
