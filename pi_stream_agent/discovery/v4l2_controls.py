"""V4L2 controls, as ``v4l2-ctl -d NODE --list-ctrls-menus`` (``-L``) prints them: a pure parser.

Both layouts v4l-utils has printed (utils/v4l2-ctl/v4l2-ctl-common.cpp, ``print_qctrl``)::

    current:   brightness 0x00980900 (int)    : min=-64 max=64 step=1 default=0 value=0
               power_line_frequency 0x00980918 (menu)   : min=0 max=2 default=1 value=1 (50 Hz)
                                   0: Disabled
               exposure_time_absolute 0x009a0902 (int)    : min=1 max=5000 … flags=inactive, has-min-max
    old:       brightness (int)    : min=0 max=100 step=1 default=50 value=50 flags=slider
               exposure_auto (menu)   : min=0 max=3 default=1 value=3

Menu items follow their control on lines of their own (``\\t\\t\\t\\t<index>: <label>``; an integer menu's
label is ``<value> (<hex>)``). Class titles (``User Controls``, ``Camera Controls``) and anything else that is
not a control line are skipped, so the parser can also read the controls out of a ``--all`` or combined
``--info --list-ctrls-menus --list-formats-ext`` output.

The result is the API's JSON form (docs/api.md, devices): ``{name: {"type", "min", "max", "step", "default",
"value", "flags": [...], "menu": {"<index>": "<label>"}}}`` with each key present only when the tool printed
it. Numbers are ints (v4l2-ctl prints bitmasks in hex; those become ints too); a string control's value is
its text. Read-only controls carry ``"read-only"`` in ``flags``, inactive ones ``"inactive"``.
"""

from __future__ import annotations

import re
from typing import Any

# "<name> [0x<id>] (<type>) : <fields>" — the hex id is absent in v4l-utils before 1.12 (2017).
_CONTROL = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9_]+)\s+(?:0x[0-9a-fA-F]{8}\s+)?\((?P<type>[a-z0-9 ]+)\)\s*:\s*(?P<fields>.*)$"
)
_MENU_ITEM = re.compile(r"^\s+(?P<index>-?\d+): (?P<label>.*?)\s*$")
# An integer menu item's label is "<value> (0x<hex>)"; the value alone is what a person reads.
_INTMENU_LABEL = re.compile(r"^(?P<value>-?\d+) \(0x[0-9a-fA-F]+\)$")
# v4l2-ctl's type names, mapped to the API's ("str" is printed for string controls).
_TYPE_NAMES = {"str": "string"}
_NUMERIC_FIELDS = ("min", "max", "step", "default", "value")
_KEY_ORDER = ("type", *_NUMERIC_FIELDS, "flags", "menu")
READ_ONLY = "read-only"
INACTIVE = "inactive"


def _number(text: str) -> int | None:
    try:
        return int(text, 0)  # decimal, or 0x… for bitmasks
    except ValueError:
        return None


def _parse_fields(control_type: str, fields: str) -> dict[str, Any]:
    """``min=0 max=2 default=1 value=1 (50 Hz) flags=inactive, has-min-max`` → the control's JSON keys."""
    result: dict[str, Any] = {}
    flags_at = fields.find("flags=")
    if flags_at >= 0:
        flags = [flag.strip() for flag in fields[flags_at + len("flags=") :].split(",")]
        result["flags"] = [flag for flag in flags if flag]
        fields = fields[:flags_at]
    if control_type == "string":
        # value='text' may hold spaces; take it whole before splitting the numeric fields.
        quoted = re.search(r"value='(.*)'", fields)
        if quoted:
            result["value"] = quoted.group(1)
            fields = fields[: quoted.start()]
    for token in fields.split():
        key, sep, raw = token.partition("=")
        if sep and key in _NUMERIC_FIELDS and key not in result:
            number = _number(raw)
            if number is not None:
                result[key] = number
        # anything else — the menu value's "(label)", a compound control's elems=/dims= — is not kept
    return {key: result[key] for key in _KEY_ORDER if key in result}


def parse_list_ctrls_menus(text: str) -> dict[str, dict[str, Any]]:
    """Every control in the text, in the order printed; ``{}`` for an empty or foreign text. Never raises."""
    controls: dict[str, dict[str, Any]] = {}
    menu: dict[str, str] | None = None  # the items of the menu control just read, while they follow
    intmenu = False
    for line in text.splitlines():
        control = _CONTROL.match(line)
        if control:
            raw_type = control.group("type").strip()
            control_type = _TYPE_NAMES.get(raw_type, raw_type)
            entry: dict[str, Any] = {"type": control_type}
            entry.update(_parse_fields(control_type, control.group("fields")))
            controls[control.group("name")] = entry
            intmenu = control_type == "intmenu"
            menu = {} if control_type in ("menu", "intmenu") else None
            if menu is not None:
                entry["menu"] = menu
            continue
        item = _MENU_ITEM.match(line) if menu is not None else None
        if item:
            assert menu is not None
            label = item.group("label")
            short = _INTMENU_LABEL.match(label) if intmenu else None
            menu[item.group("index")] = short.group("value") if short else label
            continue
        if line.strip():
            menu = None  # a class title or other text ends the item list
    for entry in controls.values():
        if entry.get("menu") == {}:
            del entry["menu"]  # a menu listed without items (plain --list-ctrls): no "menu" key
    return controls
