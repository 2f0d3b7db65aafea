"""V4L2 controls of a capture card or webcam: checking a value against what the card reports, and setting
and reading them with ``v4l2-ctl`` (argument lists only, never a shell).

A card's controls come from discovery (``v4l2-ctl --list-ctrls-menus``, in the devices document's form:
``{"brightness": {"type": "int", "min": -64, "max": 64, "step": 1, "default": 0, "value": 0, "flags": [...],
"menu": {"0": "Disabled"}}}``). Setting: ``v4l2-ctl -d DEV -c a=1,b=2`` (one run for several); reading back:
``v4l2-ctl -d DEV -C a,b`` prints ``a: 1`` per line. Cards forget their controls when replugged or reset,
so the manager sets the stored ones again after every (re)start.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

# v4l2-ctl's names: the driver's name lowercased, every other character run made "_" (name2var in
# v4l2-ctl-common.cpp).
_NAME = re.compile(r"[a-z0-9_]{1,64}")
NUMBER_TYPES: Final = frozenset({"int", "int64", "integer", "integer64"})
MENU_TYPES: Final = frozenset({"menu", "intmenu"})
BOOL_TYPES: Final = frozenset({"bool", "boolean"})
# The card's orientation controls (names as v4l2-ctl prints them: uvcvideo, bcm2835-v4l2, most sensors).
HFLIP: Final = "horizontal_flip"
VFLIP: Final = "vertical_flip"
ROTATE: Final = "rotate"
TIMEOUT_S: Final = 5.0


def human_name(name: str) -> str:
    """``exposure_time_absolute`` → ``Exposure Time Absolute`` (v4l2-ctl prints only the short name)."""
    return " ".join(part.capitalize() if part.islower() else part for part in name.split("_") if part)


def control_name_problem(name: str, value: Any) -> str | None:
    """What is wrong with a stored ``v4l2_controls`` entry whatever the card (a predicate), or None."""
    if not _NAME.fullmatch(name):
        return "is not a V4L2 control name (lowercase letters, digits and _, as v4l2-ctl --list-ctrls prints)"
    if not isinstance(value, int):  # bool is an int: true/false for boolean controls
        return "must be a whole number, or true/false for a switch"
    return None


def kind_of(control: Mapping[str, Any]) -> str | None:
    """The entity kind a control becomes: number, switch or select; None for buttons, bitmasks, strings."""
    kind = str(control.get("type", ""))
    if kind in NUMBER_TYPES:
        return "number"
    if kind in BOOL_TYPES:
        return "switch"
    if kind in MENU_TYPES:
        return "select"
    return None


def is_settable(control: Mapping[str, Any]) -> str | None:
    """Why a control cannot be set now (a predicate), or None."""
    flags = set(control.get("flags") or ())
    if "read-only" in flags:
        return "is read-only on this camera"
    if "inactive" in flags:
        return "is inactive now (another control, such as an automatic mode, decides it)"
    return None


def check_value(name: str, control: Mapping[str, Any], value: Any) -> tuple[int | bool | None, str | None]:
    """A value for a card's control (API/YAML form; menus by index, as a string or a number) → (the value to
    store, None) or (None, what is wrong: a predicate)."""
    kind = kind_of(control)
    if kind is None:
        return None, f"is a {control.get('type', 'special')} control, which cannot be set here"
    if kind == "switch":
        if isinstance(value, bool):
            return value, None
        if isinstance(value, int) and value in (0, 1):
            return bool(value), None
        return None, "must be on or off (true or false)"
    if kind == "select":
        menu = {str(index): label for index, label in (control.get("menu") or {}).items()}
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or text not in menu:
            choices = ", ".join(f"{index} ({label})" for index, label in menu.items())
            return None, f"must be one of {choices}"
        return int(text), None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            return None, "must be a whole number"
    low, high = control.get("min"), control.get("max")
    if isinstance(low, int) and isinstance(high, int) and not low <= value <= high:
        return None, f"must be between {low} and {high}"
    step = control.get("step")
    if isinstance(step, int) and step > 1 and isinstance(low, int) and (value - low) % step:
        return None, f"must be {low} plus a multiple of {step}"
    return value, None


def _text(value: int | bool) -> str:
    return str(int(value))


def set_argv(tool: str, device: str, values: Mapping[str, int | bool]) -> list[str]:
    """``v4l2-ctl -d DEV -c a=1,b=0`` (booleans as 0/1, menus by index)."""
    pairs = ",".join(f"{name}={_text(value)}" for name, value in values.items())
    return [tool, "-d", device, "-c", pairs]


def get_argv(tool: str, device: str, names: Sequence[str]) -> list[str]:
    return [tool, "-d", device, "-C", ",".join(names)]


def parse_get(text: str) -> dict[str, int]:
    """``v4l2-ctl -C a,b`` output (``a: 1`` per line) → {name: value}; lines without a number are skipped."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            values[name.strip()] = int(rest.strip().split()[0], 0)
        except (ValueError, IndexError):
            continue
    return values


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    output: str  # stdout on success, stderr (or the reason it did not run) on failure


async def run(argv: Sequence[str]) -> ToolOutcome:
    """Run v4l2-ctl once (argument list), with a timeout; never raises for the tool's own failures."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        return ToolOutcome(False, f"{argv[0]} could not be run ({exc.strerror}); install v4l-utils")
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        return ToolOutcome(False, f"{argv[0]} did not answer within {TIMEOUT_S:g} s")
    if process.returncode != 0:
        text = (err or out).decode("utf-8", "replace").strip()
        return ToolOutcome(False, text or f"{argv[0]} failed (exit status {process.returncode})")
    return ToolOutcome(True, out.decode("utf-8", "replace"))
