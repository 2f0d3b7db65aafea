"""A stream's controls: what its camera offers (the picture settings of ``settings.py`` narrowed to what the
camera lists, and a V4L2 card's own controls), the document ``GET /api/v1/streams/{id}/controls`` returns,
and the check of a change (``PUT``) against the camera before anything is stored or applied.

Pure apart from :func:`tuning_files` (lists the tuning files below the root).

Which settings a stream gets:

* CSI: a setting whose libcamera ``control`` the camera lists (``rpicam-hello --list-cameras -v``), with its
  number range narrowed to the camera's; orientation always; the tuning file when files for the sensor are
  present; the autofocus button where ``AfMode`` is listed.
* V4L2: orientation through the card's ``horizontal_flip``/``vertical_flip`` controls when it has both
  (applied live), else through an ffmpeg filter when ffmpeg encodes the stream (a restart), else not offered
  (the card's stream is passed through untouched); and every control the card reports (``v4l2:<name>``).
* Test patterns: orientation (an ffmpeg filter).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pi_stream_agent.rootfs import Root
from pi_stream_agent.streams import v4l2_controls as v4l2
from pi_stream_agent.streams.model import StreamConfig
from pi_stream_agent.streams.problems import Problem, stream_label
from pi_stream_agent.streams.settings import (
    AWB_GAIN_IDS,
    ORIENTATION_IDS,
    SETTINGS,
    SOUND_SETTING_IDS,
    TUNING_DIRS,
    Choice,
    SettingDef,
    check_value,
    effective_orientation,
)

V4L2_PREFIX = "v4l2:"
# V4L2 controls a person commonly sets: enabled by default in Home Assistant, the others disabled.
COMMON_V4L2: frozenset[str] = frozenset(
    {
        "brightness",
        "contrast",
        "saturation",
        "auto_exposure",
        "exposure_auto",
        "exposure_time_absolute",
        "exposure_absolute",
        "focus_automatic_continuous",
        "focus_auto",
        "power_line_frequency",
    }
)
OrientationBy = Literal["rpicam", "driver", "filter", "none"]


def passes_through(stream: StreamConfig) -> bool:
    """A V4L2 stream whose card's compressed stream is published untouched (no decode, so no filter)."""
    return stream.encoder == "copy" or (stream.encoder == "auto" and stream.source.input_format == "h264")


def orientation_by(stream: StreamConfig, device_controls: Mapping[str, Any]) -> OrientationBy:
    """How the stream's picture is turned: rpicam-vid's transform, the card's flip controls, an ffmpeg
    filter, or not at all (a card without flip controls whose stream is passed through)."""
    kind = stream.source.kind
    if kind == "csi":
        return "rpicam"
    if kind == "v4l2":
        flips = [device_controls.get(name) for name in (v4l2.HFLIP, v4l2.VFLIP)]
        if all(isinstance(c, Mapping) and v4l2.kind_of(c) == "switch" for c in flips):
            return "driver"
        return "none" if passes_through(stream) else "filter"
    return "filter"


ORIENTATION_REFUSAL = (
    "cannot be changed for this card: it has no flip controls and its stream is passed through untouched; "
    "choose the encoder auto or software (with a raw or Motion-JPEG input format) so the picture can be "
    "turned"
)


def tuning_files(root: Root, model: str | None, pisp: bool) -> list[str]:
    """The tuning files present for a sensor (``imx708``, ``imx708_noir``, ``imx708_wide`` …), by stem."""
    if not model:
        return []
    sensor = model.split("_")[0]
    directory = root.path(TUNING_DIRS["pisp" if pisp else "vc4"])
    try:
        return sorted(
            path.stem
            for path in directory.glob(f"{sensor}*.json")
            if path.stem == sensor or path.stem.startswith(sensor + "_")
        )
    except OSError:
        return []


def _tuning_name(stem: str) -> str:
    words = stem.split("_")
    extra = {"noir": "NoIR", "wide": "wide"}
    return " ".join([words[0], *(extra.get(word, word) for word in words[1:])])


@dataclass(frozen=True)
class OfferedSetting:
    setting: SettingDef
    options: tuple[Choice, ...] = ()
    min: float | None = None
    max: float | None = None
    apply: Literal["restart", "live"] = "restart"


@dataclass
class Offer:
    """What a stream's camera offers, by control id (``rotation``, ``v4l2:brightness``)."""

    stream: StreamConfig
    settings: dict[str, OfferedSetting] = field(default_factory=dict)
    v4l2: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # by control name
    orientation: OrientationBy = "none"

    @property
    def has_autofocus(self) -> bool:
        return "autofocus" in self.settings


def _narrowed(setting: SettingDef, reported: Mapping[str, Any] | None) -> tuple[float | None, float | None]:
    low, high = setting.min, setting.max
    if reported is None or low is None or high is None:
        return low, high
    cmin, cmax = reported.get("min"), reported.get("max")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (cmin, cmax)):
        return low, high
    assert cmin is not None and cmax is not None
    new_low, new_high = max(low, float(cmin)), min(high, float(cmax))
    return (new_low, new_high) if new_low <= new_high else (float(cmin), float(cmax))


def build_offer(
    stream: StreamConfig,
    *,
    camera: Mapping[str, Any] | None = None,
    device: Mapping[str, Any] | None = None,
    tuning: list[str] | None = None,
) -> Offer:
    """What ``stream``'s camera offers: ``camera`` is its CSI camera and ``device`` its capture device (the
    devices document's entries; None when not found), ``tuning`` the tuning files present for its sensor."""
    kind = stream.source.kind
    camera_controls: Mapping[str, Any] = (camera or {}).get("controls") or {}
    device_controls: Mapping[str, Any] = (device or {}).get("controls") or {}
    offer = Offer(stream=stream, orientation=orientation_by(stream, device_controls))
    for setting in SETTINGS:
        if kind not in setting.sources:
            continue
        if setting.id in ORIENTATION_IDS:
            if offer.orientation == "none":
                continue
            apply: Literal["restart", "live"] = "live" if offer.orientation == "driver" else "restart"
            offer.settings[setting.id] = OfferedSetting(setting, setting.options, apply=apply)
            continue
        if setting.id in SOUND_SETTING_IDS and stream.audio is None:
            continue  # sound detection needs sound: offered for streams with an audio: device
        if setting.id == "tuning_file":
            if tuning:
                options = tuple(Choice(stem, _tuning_name(stem)) for stem in tuning)
                offer.settings[setting.id] = OfferedSetting(setting, options)
            continue
        if setting.control is not None and setting.control not in camera_controls:
            continue
        low, high = _narrowed(setting, camera_controls.get(setting.control) if setting.control else None)
        offer.settings[setting.id] = OfferedSetting(setting, setting.options, low, high, apply=setting.apply)
    if kind == "v4l2":
        used_for_orientation = {v4l2.HFLIP, v4l2.VFLIP} if offer.orientation == "driver" else set()
        for name, control in device_controls.items():
            if isinstance(control, Mapping) and v4l2.kind_of(control) and name not in used_for_orientation:
                offer.v4l2[name] = control
    return offer


# ------------------------------------------------------------------------------------------- the document


def _setting_entry(offered: OfferedSetting, value: Any) -> dict[str, Any]:
    setting = offered.setting
    entry: dict[str, Any] = {
        "id": setting.id,
        "source": "setting",
        "kind": setting.kind,
        "name": setting.name,
        "value": value,
        "apply": offered.apply,
        "enabled_by_default": setting.enabled_by_default,
        "read_only": False,
        "inactive": False,
        "icon": setting.icon,
    }
    if setting.default is not None:
        entry["default"] = setting.default
    if setting.kind == "select":
        entry["options"] = [{"id": c.id, "name": c.name} for c in offered.options]
    if setting.kind == "number":
        entry.update({"min": offered.min, "max": offered.max, "step": setting.step, "unit": setting.unit})
    return entry


def _v4l2_entry(name: str, control: Mapping[str, Any], value: Any) -> dict[str, Any]:
    kind = v4l2.kind_of(control)
    flags = set(control.get("flags") or ())
    entry: dict[str, Any] = {
        "id": V4L2_PREFIX + name,
        "source": "v4l2",
        "kind": kind,
        "name": str(control.get("name") or v4l2.human_name(name)),
        "value": value,
        "apply": "live",
        "enabled_by_default": name in COMMON_V4L2,
        "read_only": "read-only" in flags,
        "inactive": "inactive" in flags,
    }
    if kind == "number":
        entry.update({k: control.get(k) for k in ("min", "max", "step", "default")})
    elif kind == "select":
        entry["options"] = [
            {"id": str(i), "name": str(label)} for i, label in (control.get("menu") or {}).items()
        ]
        entry["default"] = None if control.get("default") is None else str(control.get("default"))
    else:
        entry["default"] = None if control.get("default") is None else bool(control.get("default"))
    return entry


def _v4l2_value(control: Mapping[str, Any], value: Any) -> Any:
    if value is None:
        return None
    kind = v4l2.kind_of(control)
    if kind == "select":
        return str(int(value))
    if kind == "switch":
        return bool(value)
    return value


def document(offer: Offer, live_values: Mapping[str, int] | None = None) -> dict[str, Any]:
    """``GET /api/v1/streams/{id}/controls``: each control with its value — the configured one, else for
    V4L2 the card's current one (``live_values``: read back after the last set; else the devices
    document's), else null (the camera's default)."""
    stream = offer.stream
    entries = []
    value: Any
    for setting_id, offered in offer.settings.items():
        value = None if offered.setting.kind == "button" else stream.settings.get(setting_id)
        entries.append(_setting_entry(offered, value))
    for name, control in offer.v4l2.items():
        if name in stream.v4l2_controls:
            value = stream.v4l2_controls[name]
        elif live_values and name in live_values:
            value = live_values[name]
        else:
            value = control.get("value")
        entries.append(_v4l2_entry(name, control, _v4l2_value(control, value)))
    return {"stream_id": stream.id, "controls": entries}


# ------------------------------------------------------------------------------------------- a change


@dataclass
class Change:
    """A checked change: the stream's new settings and V4L2 controls, and how it is applied."""

    settings: dict[str, Any]
    v4l2_controls: dict[str, int | bool]
    restart: bool  # a setting rpicam-vid or ffmpeg reads at start changed
    live: bool  # something v4l2-ctl sets changed (card controls, or orientation through its flips)


def _problem(stream: StreamConfig, control_id: str, name: str, predicate: str) -> Problem:
    return Problem(
        stream_label(None, stream.id),
        control_id,
        predicate,
        stream_id=stream.id,
        sentence=f"{name} {predicate}.",
        name=name,
    )


def check_change(offer: Offer, changes: Mapping[str, Any]) -> tuple[Change | None, list[Problem]]:
    """Every requested value checked against the camera (offered, range, step, menu, read-only, inactive);
    null = back to the camera's default. Returns the change, or the problems (then nothing may be applied)."""
    stream = offer.stream
    settings = dict(stream.settings)
    controls = dict(stream.v4l2_controls)
    problems: list[Problem] = []
    restart = live = False
    for control_id, value in changes.items():
        if control_id.startswith(V4L2_PREFIX):
            name = control_id.removeprefix(V4L2_PREFIX)
            control = offer.v4l2.get(name)
            label = str(control.get("name") or v4l2.human_name(name)) if control else v4l2.human_name(name)
            if control is None:
                problems.append(_problem(stream, control_id, label, "is not a control of this camera"))
                continue
            if value is None:
                live |= controls.pop(name, None) is not None
                continue
            refusal = v4l2.is_settable(control)
            checked, problem = (None, refusal) if refusal else v4l2.check_value(name, control, value)
            if problem or checked is None:
                problems.append(_problem(stream, control_id, label, problem or "cannot be set"))
                continue
            live |= controls.get(name) != checked
            controls[name] = checked
            continue
        offered = offer.settings.get(control_id)
        if offered is None:
            setting_name = next((s.name for s in SETTINGS if s.id == control_id), None)
            if control_id in ORIENTATION_IDS and offer.orientation == "none":
                problems.append(_problem(stream, control_id, setting_name or control_id, ORIENTATION_REFUSAL))
            elif setting_name:
                problems.append(
                    _problem(stream, control_id, setting_name, "is not available for this camera")
                )
            else:
                problems.append(
                    _problem(stream, control_id, f'"{control_id}"', "is not a control of this stream")
                )
            continue
        setting = offered.setting
        if setting.kind == "button":
            problems.append(_problem(stream, control_id, setting.name, "is an action: use its own request"))
            continue
        if value is None:
            changed = settings.pop(control_id, None) is not None
        else:
            checked, problem = check_value(setting, value)
            if (
                problem is None
                and setting.kind == "number"
                and offered.min is not None
                and offered.max is not None
                and not offered.min <= checked <= offered.max
            ):
                problem = f"must be between {offered.min:g} and {offered.max:g} on this camera"
            if (
                problem is None
                and setting.kind == "select"
                and checked not in {c.id for c in offered.options}
            ):
                problem = f"must be one of {', '.join(c.id for c in offered.options)}"
            if problem:
                problems.append(_problem(stream, control_id, setting.name, problem))
                continue
            changed = settings.get(control_id) != checked
            settings[control_id] = checked
        if changed:
            if offered.apply == "live":
                live = True
            else:
                restart = True
    gains = [key for key in AWB_GAIN_IDS if key in settings]
    if len(gains) == 1:
        other = next(s for s in SETTINGS if s.id == AWB_GAIN_IDS[1 - AWB_GAIN_IDS.index(gains[0])])
        setting = next(s for s in SETTINGS if s.id == gains[0])
        problems.append(
            _problem(
                stream, gains[0], setting.name, f"needs {other.name.lower()} too (rpicam-vid takes both)"
            )
        )
    if problems:
        return None, problems
    ordered = {s.id: settings[s.id] for s in SETTINGS if s.id in settings}
    return Change(ordered, controls, restart, live), []


def camera_problems(offer: Offer, index: int | None = None, *, camera_listed: bool = True) -> list[Problem]:
    """A stored stream's settings and V4L2 controls the camera does not offer (config validation).
    ``camera_listed``: False when the camera's controls are not known (an rpicam-hello without ``-v``
    listing): then only orientation is checked. The tuning file is checked when the pipeline is built."""
    stream = offer.stream
    found: list[Problem] = []
    for key, value in stream.settings.items():
        if key == "tuning_file" or (not camera_listed and key not in ORIENTATION_IDS):
            continue
        offered = offer.settings.get(key)
        name = next((s.name for s in SETTINGS if s.id == key), key)
        if offered is None:
            reason = (
                ORIENTATION_REFUSAL
                if key in ORIENTATION_IDS and offer.orientation == "none"
                else ("is not available for this camera")
            )
            found.append(_config_problem(stream, index, f"settings.{key}", name, reason))
        elif offered.setting.kind == "select" and value not in {c.id for c in offered.options}:
            choices = ", ".join(c.id for c in offered.options)
            found.append(_config_problem(stream, index, f"settings.{key}", name, f"must be one of {choices}"))
    if stream.source.kind == "v4l2" and offer.v4l2:
        for name, value in stream.v4l2_controls.items():
            control = offer.v4l2.get(name)
            label = v4l2.human_name(name)
            if control is None:
                found.append(
                    _config_problem(
                        stream, index, f"v4l2_controls.{name}", label, "is not a control of this card"
                    )
                )
                continue
            refusal = v4l2.is_settable(control)
            _, problem = (None, refusal) if refusal else v4l2.check_value(name, control, value)
            if problem:
                found.append(_config_problem(stream, index, f"v4l2_controls.{name}", label, problem))
    return found


def _config_problem(
    stream: StreamConfig, index: int | None, field_: str, name: str, predicate: str
) -> Problem:
    return Problem(
        stream_label(index, stream.id),
        field_,
        predicate,
        stream_id=stream.id,
        index=index,
        sentence=f"{name} {predicate}.",
        name=name,
    )


def driver_orientation(stream: StreamConfig) -> dict[str, int | bool]:
    """The card's flip controls for the stream's orientation (cards whose flips turn the picture)."""
    hflip, vflip = effective_orientation(stream.settings)
    return {v4l2.HFLIP: hflip, v4l2.VFLIP: vflip}
