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

import os
import re
import shutil
import tempfile

from ansible_collections.pkgcache.fleet.plugins.module_utils import conda_config
from ansible_collections.pkgcache.fleet.plugins.module_utils.conda_model import Installation

KEY = "pkgs_dirs"

DEFAULT_INDENT = "  - "
_ITEM = re.compile(r"^(\s*-)(\s+|$)")
# Plain scalars that YAML (or conda's reader, which opens a quote at any quote character) would
# take for something else.
_NEEDS_QUOTES = re.compile(r"^[\s\-?:,\[\]{}#&*!|>%@`]|['\"]|: |:$|\s#|\s$|^$|^(~|null|Null|NULL|true|false|yes|no)$")


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
    content, _marker = conda_config.strip_comment(line)
    return content, line[len(content):].rstrip("\r\n")


def _is_top_level(content):
    return bool(content) and not content[0].isspace() and not _ITEM.match(content)


def _find_block(lines, key, source):
    """Locate ``key``'s block, or return None when the file does not set it.

    The file is parsed first: a file conda would reject is not edited.
    """
    try:
        conda_config.parse_condarc("".join(lines), source=source, keys=set([key]))
    except conda_config.CondarcError as exc:
        raise EditError("refusing to edit a malformed file: %s" % exc)
    for index, line in enumerate(lines):
        content, comment = _split_comment(line)
        match = conda_config.KEY_LINE.match(content) if _is_top_level(content) else None
        if not match or match.group(1) != key:
            continue
        value = (match.group(2) or "").strip()
        items, pending, indent, end = [], [], None, index + 1
        if value:
            if not value.startswith("["):
                raise EditError("%s: %s is not a list (%r)" % (source, key, value))
            items = [(v, "", []) for v in conda_config.flow_sequence(value)]
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
            items.append((conda_config.scalar(body[item.end():]), item_comment, pending))
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
        return '"%s"' % value.replace("\\", "\\\\")  # a backslash escapes in double quotes
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
        parsed = conda_config.parse_condarc(text, source=source, keys=set([key]))
    except conda_config.CondarcError as exc:
        raise EditError("the edited file would not parse: %s" % exc)
    found = parsed.get(key)
    got = None if found is None else [value for value, _marker in found.items]
    if got != (None if values is None else list(values)):
        raise EditError("%s: editing %s gave %r instead of %r" % (source, key, got, values))


# -- the configuration conda will see after an edit of pkgs_dirs ----------------------------------


def wanted_items(current, pkgs_dirs, state):
    """The file's new ``pkgs_dirs`` list; None means the key goes away."""
    if state == "present":
        return list(pkgs_dirs)
    if current is None:
        return None
    kept = [item for item in current if item not in pkgs_dirs]
    return kept or None


def _search_rank(path, root, home, env):
    """Where ``path`` stands in conda's search order, as a sort key; None if conda never reads it."""
    variables = dict(env)
    variables["CONDA_ROOT"] = root
    for index, entry in enumerate(conda_config.SEARCH_PATH):
        if "$" in entry.split("/")[0] and not variables.get(entry.split("/")[0][1:]):
            continue
        expanded = conda_config.expand(entry, home, variables)
        if entry.endswith("/"):
            if os.path.dirname(path) == expanded and path.endswith((".yml", ".yaml")):
                return (index, os.path.basename(path))
        elif path == expanded:
            return (index, "")
    return None


class Resolution(object):
    """The effective config with the target file holding ``text``, and who contributes what."""

    def __init__(self, config, contributors, hidden_by):
        self.config = config
        self.contributors = contributors  # expanded entry -> [sources]
        self.hidden_by = hidden_by  # sources marked #!final that outrank the target


def resolve_with(request, text):
    """Resolve as conda would if the target file held ``text`` (None: the file does not exist).

    Nothing on the host changes: the text goes to a private temp file that takes the target's
    place in the search order.
    """
    root, home, env = request.root, request.viewer.home, request.env
    rank = _search_rank(request.condarc, root, home, env)
    if rank is None:
        raise EditError("conda does not read %s for %s as %s" % (request.condarc, root, request.viewer.name))
    files = [f for f in conda_config.search_path(root, home, env) if f != request.condarc]
    temp_dir = tempfile.mkdtemp(prefix="pkgcache-condarc-")
    try:
        stand_in = os.path.join(temp_dir, "condarc")
        if text is not None:
            with open(stand_in, "w") as handle:
                handle.write(text)
            files = sorted(files + [stand_in], key=lambda f: rank if f == stand_in else (
                _search_rank(f, root, home, env) or (len(conda_config.SEARCH_PATH), "")))
        writable = Installation(root).writable_by(request.viewer)
        config = conda_config.resolve(root, home, env, writable, files=files)
        contributors, hidden_by = _contributions(files, stand_in, request)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    config.sources = [request.condarc if s == stand_in else s for s in config.sources]
    config.warnings = [w.replace(stand_in, request.condarc) for w in config.warnings]
    config.origins = dict((path, [request.condarc if o == stand_in else o for o in origins])
                          for path, origins in config.origins.items())
    return Resolution(config, contributors, hidden_by)


def _contributions(files, stand_in, request):
    home, env = request.viewer.home, request.env
    contributors, hidden_by, seen_target = {}, [], False
    for path, parsed in conda_config.read_files(files, []):
        source = request.condarc if path == stand_in else path
        seen_target = seen_target or path == stand_in
        value = parsed.get(KEY)
        if not isinstance(value, conda_config.SequenceValue):
            continue
        for item, _marker in value.items:
            contributors.setdefault(conda_config.expand(item, home, env), []).append(source)
        if value.final and not seen_target:
            hidden_by.append(source)
    for item in [i for i in env.get("CONDA_PKGS_DIRS", "").split(",") if i.strip()]:
        contributors.setdefault(conda_config.expand(item.strip(), home, env), []).append("$CONDA_PKGS_DIRS")
    return contributors, hidden_by


def expand_all(request, items):
    """Config entries as the viewer's conda reads them (variables, ``~``, absolute)."""
    return [conda_config.expand(i, request.viewer.home, request.env) for i in (items or [])]


def judge(request, items, after):
    """Errors and warnings about the effective ``pkgs_dirs`` the new file gives."""
    effective = after.config.pkgs_dirs
    errors, warnings = [], []
    wanted = expand_all(request, items)
    missing = [w for w in wanted if w not in effective]
    if missing:
        why = ("%s marks %s #!final" % (", ".join(after.hidden_by), KEY)) if after.hidden_by else "another source wins"
        errors.append("conda would not use %s from %s: %s" % (", ".join(missing), request.condarc, why))
    for entry in [e for e in effective if e not in wanted]:
        sources = [s for s in after.contributors.get(entry, []) if s != request.condarc]
        warnings.append("%s also lists %s (from %s)" % (KEY, entry, ", ".join(sources) or "conda's defaults"))
    if request.state == "absent":
        for entry in expand_all(request, request.pkgs_dirs):
            if entry in effective:
                warnings.append("%s stays in effect: %s" % (entry, ", ".join(after.contributors.get(entry, [])) or "conda's defaults"))
    elif wanted and effective and effective[0] != wanted[0]:
        message = "downloads go to %s, not %s (it comes first from %s)" % (
            effective[0], wanted[0], ", ".join(after.contributors.get(effective[0], [])) or "conda's defaults")
        (errors if request.migrate else warnings).append(message)
    return errors, warnings
