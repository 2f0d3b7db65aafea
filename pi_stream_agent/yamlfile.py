"""Reading the agent's YAML files (its config file and ``<state_dir>/streams.yaml``): strict loading, errors
that give the line and column, key paths for messages, and the value checks every section shares.

One loader for both files, so a file copied from one into the other (as the documentation invites) is read
by the same rules: a key given twice is an error, merge keys (``<<: *defaults``) are allowed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import voluptuous as vol
import yaml


class YamlFileError(Exception):
    """The file cannot be read as YAML. ``str()`` names the file and, where known, the line and column."""


class StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice is an error: by default the last one silently
    wins, so a second ``listen:`` block or a second ``fps:`` in a hand-edited stream would throw the first
    away unseen."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *defaults`: keys written beside it override the merged ones, by design
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # an unhashable key: the base class reports it properly
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
        return super().construct_mapping(node, deep=deep)


def _undecodable(path: Path, raw: bytes, exc: UnicodeDecodeError) -> YamlFileError:
    line = raw.count(b"\n", 0, exc.start) + 1
    line_start = raw.rfind(b"\n", 0, exc.start) + 1
    # Columns in characters, as an editor counts them (everything before the bad byte decodes).
    column = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
    return YamlFileError(
        f"{path}: is not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}, column {column}); "
        "save it as UTF-8"
    )


def parse_yaml(raw: bytes, path: Path) -> Any:
    """The document in ``raw`` (read from ``path``, named in messages). Raises :class:`YamlFileError`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _undecodable(path, raw, exc) from None
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.reader.ReaderError as exc:
        # A control character: the reader knows only the character offset, so count the lines ourselves.
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        character = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        raise YamlFileError(
            f"{path}: not valid YAML at line {line}, column {column}: "
            f"control character {character} is not allowed"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlFileError(f"{path}: not valid YAML{where}: {problem}") from None


def describe_path(path: Sequence[Any]) -> str:
    """A voluptuous error path as a person reads it in the file: ``streams[1].substream.width``; empty for
    the document itself."""
    parts: list[str] = []
    for element in path:
        if isinstance(element, int):
            parts.append(f"[{element}]")
        else:
            parts.append(("." if parts else "") + str(element))
    return "".join(parts)


# Our own validators rather than voluptuous' built-in types: their messages ("expected bool", "not a valid
# value") differ between voluptuous versions and do not say what was found.


def name_unknown_keys(exc: vol.MultipleInvalid, keys: Sequence[str], what: str) -> vol.MultipleInvalid:
    """voluptuous says "extra keys not allowed" for a key a mapping does not take; say which keys it takes
    instead (``what``: "a stream", "rtsp"). Other errors pass unchanged."""
    return vol.MultipleInvalid(
        [
            vol.Invalid(
                f"unknown key for {what} (check the spelling; it takes {', '.join(keys)})",
                path=list(error.path),
            )
            if error.error_message == "extra keys not allowed" and len(error.path) == 1
            else error
            for error in exc.errors
        ]
    )


def boolean(value: Any) -> bool:
    """``true``/``false`` only: YAML's ``yes`` is already a bool, and ``1`` or ``"on"`` would be a guess."""
    if not isinstance(value, bool):
        raise vol.Invalid(f"expected true or false, got {value!r}")
    return value
