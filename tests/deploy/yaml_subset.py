"""A strict parser for the YAML subset deploy/compose.yaml is written in.

The project's environment has no YAML library (and `docker compose config`
needs the compose plugin), so the compose file keeps to a subset this module
reads exactly, and refuses anything outside it rather than guess:

- block mappings (`key: value`, `key:` and an indented block), two-space or any
  consistent deeper indentation, no tabs, no duplicate keys;
- block sequences (`- item`) of scalars, indented under their key;
- flow sequences only as JSON arrays of strings (`["CMD", "pg_isready"]`);
- scalars: double-quoted (JSON escapes), single-quoted (`''` for a quote), or
  plain: `true`/`false`, `null`/`~`, decimal integers, otherwise a string.
  Plain `yes`/`no`/`on`/`off`/`y`/`n` are refused (YAML 1.1 reads them as
  booleans, YAML 1.2 as strings: quote them);
- `#` comments (at a line's start or after a space, outside quotes).

No anchors, aliases, tags, block scalars, flow mappings or several documents.
"""

from __future__ import annotations

import json
import re
from typing import Any

KEY_RE = re.compile(r"(?P<key>[A-Za-z0-9_][A-Za-z0-9_.-]*):(?: (?P<rest>.*))?")
INT_RE = re.compile(r"-?(0|[1-9][0-9]*)")
AMBIGUOUS = frozenset({"yes", "no", "on", "off", "y", "n"})
INDICATORS = tuple("&*!|>%@`{}[]'\"")


class YamlSubsetError(ValueError):
    pass


Line = tuple[int, int, str]  # line number, indentation, content


def parse(text: str) -> Any:
    lines: list[Line] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw:
            raise YamlSubsetError(f"line {number}: a tab")
        content = _without_comment(raw, number).rstrip()
        if content.strip() in ("---", "..."):
            raise YamlSubsetError(f"line {number}: document markers are outside the subset")
        if content.strip():
            lines.append((number, len(content) - len(content.lstrip(" ")), content.strip()))
    if not lines:
        return None
    value, end = _block(lines, 0, lines[0][1])
    if end != len(lines):
        raise YamlSubsetError(f"line {lines[end][0]}: unexpected indentation")
    return value


def _without_comment(raw: str, number: int) -> str:
    quote = ""
    i = 0
    while i < len(raw):
        c = raw[i]
        if quote == '"' and c == "\\":
            i += 2
            continue
        if quote:
            if c == quote:
                quote = ""
        elif c in "\"'" and (i == 0 or raw[i - 1] in " [,:"):
            quote = c
        elif c == "#" and (i == 0 or raw[i - 1] == " "):
            return raw[:i]
        i += 1
    if quote:
        raise YamlSubsetError(f"line {number}: an unclosed quote")
    return raw


def _block(lines: list[Line], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][2] == "-" or lines[i][2].startswith("- "):
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _mapping(lines: list[Line], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(lines):
        number, ind, content = lines[i]
        if ind < indent:
            break
        if ind > indent:
            raise YamlSubsetError(f"line {number}: unexpected indentation")
        match = KEY_RE.fullmatch(content)
        if match is None:
            raise YamlSubsetError(f"line {number}: not `key: value` ({content!r})")
        key, rest = match["key"], (match["rest"] or "").strip()
        if key in out:
            raise YamlSubsetError(f"line {number}: duplicate key {key!r}")
        i += 1
        if rest:
            out[key] = _scalar(rest, number)
        elif i < len(lines) and lines[i][1] > indent:
            out[key], i = _block(lines, i, lines[i][1])
        elif i < len(lines) and lines[i][1] == indent and lines[i][2].startswith("-"):
            raise YamlSubsetError(f"line {lines[i][0]}: indent a sequence under its key")
        else:
            out[key] = None
    return out, i


def _sequence(lines: list[Line], i: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    while i < len(lines):
        number, ind, content = lines[i]
        if ind < indent:
            break
        if ind > indent or not content.startswith("- "):
            raise YamlSubsetError(f"line {number}: a sequence holds only `- scalar` items here")
        item = content[2:].strip()
        if KEY_RE.fullmatch(item) or item.startswith("- "):
            raise YamlSubsetError(f"line {number}: only scalars in a block sequence (subset)")
        out.append(_scalar(item, number))
        i += 1
    return out, i


def _scalar(text: str, number: int) -> Any:
    if text.startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise YamlSubsetError(f"line {number}: a flow sequence must be a JSON array: {e}") from e
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise YamlSubsetError(f"line {number}: a flow sequence holds only double-quoted strings")
        return value
    if text.startswith('"'):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise YamlSubsetError(f"line {number}: a bad double-quoted string: {e}") from e
        if not isinstance(value, str):
            raise YamlSubsetError(f"line {number}: not a string")
        return value
    if text.startswith("'"):
        if len(text) < 2 or not text.endswith("'") or "'" in text[1:-1].replace("''", ""):
            raise YamlSubsetError(f"line {number}: a bad single-quoted string")
        return text[1:-1].replace("''", "'")
    if text.startswith(INDICATORS) or ": " in text or text.endswith(":"):
        raise YamlSubsetError(f"line {number}: {text!r} is outside the subset (quote it)")
    if text.lower() in AMBIGUOUS:
        raise YamlSubsetError(f"line {number}: plain {text!r} is a boolean in YAML 1.1: quote it")
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~"):
        return None
    if INT_RE.fullmatch(text):
        return int(text)
    return text
