"""The options flow's stream editor as pure functions: no I/O and none of the flow's state.

- **Sources → choices** (``source_choices``): the camera modules and capture cards of the agent's devices
  document (``GET /devices``), a test pattern, and a stream's current source when the agent no longer
  lists it; ``csi_resolutions``/``card_resolutions`` and friends turn a device's modes into choices.
- **The forms** (``settings_form``, ``substream_form``): schema, suggested values and the placeholders the
  field descriptions use, built from the agent's vocabulary (``GET /vocabulary``: human names of source
  types, test patterns, input formats and encoders, the numeric limits, and the orientation settings —
  rotation and flips — every source has). No word or limit of the agent's is copied here.
- **Form → stream configuration** (``main_config``, ``with_substream``): what ``PUT /streams/{id}`` takes,
  keeping the picture settings and camera controls the form does not show (set from the entities).
- **Agent problems → fields** (``refusal``): each problem of a refused configuration at the field it
  concerns, in the agent's own plain words; only problems that belong to no field of the form go to the
  summary at the top.

The flow steps that show these forms and talk to the agent are in ``config_flow.py``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import voluptuous as vol
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

from .vocabulary import ORIENTATION_SETTINGS, AgentVocabulary, StreamSetting, ValueRange, VocabularyWord

CONF_RESOLUTION = "resolution"
CONF_WIDTH = "width"
CONF_HEIGHT = "height"
CONF_FPS = "fps"
CONF_INPUT_FORMAT = "input_format"
CONF_PATTERN = "pattern"
CONF_BITRATE = "bitrate"
CONF_KEYFRAME_INTERVAL = "keyframe_interval"
CONF_ENCODER = "encoder"
CONF_SUBSTREAM = "substream"
CONF_SUB_WIDTH = "substream_width"
CONF_SUB_HEIGHT = "substream_height"
CONF_SUB_FPS = "substream_fps"
CONF_SUB_BITRATE = "substream_bitrate"
# The stream configuration's picture settings and V4L2 controls (agent: streams/settings.py).
CONF_SETTINGS = "settings"
CONF_V4L2_CONTROLS = "v4l2_controls"
# Parts of a stream's configuration the forms do not edit (set on the Pi or through the API): an edit keeps
# them as they are, or saving a form would silently drop the motion region or the stream's sound.
KEPT_AS_CONFIGURED = ("motion_region", "audio")
SUBSTREAM_KEPT_AS_CONFIGURED = ("audio",)

# The form's own suggestions (the agent has no say in them; it checks whatever is chosen).
COMMON_SIZES = ((1920, 1080), (1280, 720), (1024, 576), (960, 540), (800, 600), (640, 480), (640, 360))
COMMON_RATES = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 50.0, 60.0, 90.0, 120.0)
DEFAULT_RESOLUTION = "1280x720"
DEFAULT_FPS = 30.0
DEFAULT_BITRATE_KBPS = 2000
DEFAULT_KEYFRAME_INTERVAL_S = 1.0
DEFAULT_INPUT_FORMAT = "mjpeg"
# Test patterns: small, so a try costs little CPU (they are encoded in software).
TEST_DEFAULTS = {CONF_WIDTH: 640, CONF_HEIGHT: 360, CONF_FPS: 15}
# A substream is suggested at half the main size, at most this rate, an eighth of the main bitrate.
SUBSTREAM_MAX_DEFAULT_FPS = 10.0
SUBSTREAM_BITRATE_SHARE = 8
# Frame rates a device lists (29.97, 120.13) are offered rounded: 30 and 120 are what a person asks for.
RATE_ROUNDING = 0.5

COPY_ENCODER = "copy"
_RESOLUTION = re.compile(r"\s*(\d{1,5})\s*[xX×*]\s*(\d{1,5})\s*")


# -- sources -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceChoice:
    """One thing a stream can be fed from: ``value`` in the form, the ``source`` JSON for the agent, and the
    devices-document entry (camera or card) that offers its modes, when the agent listed one."""

    value: str
    label: str
    source: dict[str, Any]
    device: Mapping[str, Any] | None = None

    @property
    def kind(self) -> str:
        return str(self.source["type"])


def word_names(words: Sequence[VocabularyWord]) -> dict[str, str]:
    return {word.id: word.name for word in words}


def pattern_choice(vocabulary: AgentVocabulary) -> SourceChoice:
    return SourceChoice("test", word_names(vocabulary.source_types).get("test", "test"), {"type": "test"})


def source_choices(
    devices: Mapping[str, Any], vocabulary: AgentVocabulary, current: Mapping[str, Any] | None = None
) -> list[SourceChoice]:
    """CSI cameras by index and model, capture devices by name and stable path (``GET /devices``), a test
    pattern, and the stream's ``current`` source when the agent no longer lists it (unplugged)."""
    choices: list[SourceChoice] = []
    for camera in devices.get("csi_cameras") or []:
        index = camera.get("index")
        size = f", {camera['sensor_width']}×{camera['sensor_height']}" if camera.get("sensor_width") else ""
        choices.append(
            SourceChoice(
                f"csi:{index}",
                f"{index}: {camera.get('model') or '?'}{size}",
                {"type": "csi", "camera": index},
                camera,
            )
        )
    for card in devices.get("capture_devices") or []:
        device = card.get("stable_path") or card.get("id")
        choices.append(
            SourceChoice(
                f"v4l2:{device}",
                f"{card.get('name') or card.get('id')} ({device})",
                {"type": "v4l2", "device": device},
                card,
            )
        )
    choices.append(pattern_choice(vocabulary))
    if current and find_choice(choices, current) is None:
        if current.get("type") == "csi":
            camera = current.get("camera")
            choices.insert(0, SourceChoice(f"csi:{camera}", f"{camera}", {"type": "csi", "camera": camera}))
        elif current.get("type") == "v4l2":
            device = current.get("device")
            choices.insert(0, SourceChoice(f"v4l2:{device}", f"{device}", {"type": "v4l2", "device": device}))
    return choices


def find_choice(choices: Sequence[SourceChoice], source: Mapping[str, Any]) -> SourceChoice | None:
    """The choice a stream's configured source means (a card may be named by id, stable path or node)."""
    for choice in choices:
        if choice.kind != source.get("type"):
            continue
        if choice.kind == "test":
            return choice
        if choice.kind == "csi":
            camera = source.get("camera")
            if camera == choice.source["camera"] or (
                choice.device is not None and camera == choice.device.get("id_path")
            ):
                return choice
        elif source.get("device") == choice.source["device"] or (
            choice.device is not None
            and source.get("device") in (choice.device.get("id"), choice.device.get("path"))
        ):
            return choice
    return None


def _fmt(value: float) -> str:
    return f"{value:g}"


def _resolution_value(width: int, height: int) -> str:
    return f"{width}x{height}"


def _rate_option(rate: float) -> SelectOptionDict:
    return SelectOptionDict(value=_fmt(rate), label=f"{_fmt(rate)} fps")


def csi_resolutions(camera: Mapping[str, Any]) -> list[SelectOptionDict]:
    """Sizes a CSI camera can deliver: its sensor modes and common sizes within the sensor (the ISP scales
    down), each with the highest frame rate a mode at least that large offers."""
    modes = [
        (m["width"], m["height"], m.get("fps"))
        for m in camera.get("modes") or []
        if isinstance(m.get("width"), int) and isinstance(m.get("height"), int)
    ]
    max_w = camera.get("sensor_width") or max((w for w, _, _ in modes), default=4096)
    max_h = camera.get("sensor_height") or max((h for _, h, _ in modes), default=4096)
    sizes = {(w, h) for w, h, _ in modes} | {(w, h) for w, h in COMMON_SIZES if w <= max_w and h <= max_h}
    options: list[SelectOptionDict] = []
    for width, height in sorted(sizes, key=lambda s: (s[0] * s[1], s[0]), reverse=True):
        rates = [fps for w, h, fps in modes if w >= width and h >= height and isinstance(fps, int | float)]
        label = f"{width}×{height}" + (f" (≤ {_fmt(max(rates))} fps)" if rates else "")
        options.append(SelectOptionDict(value=_resolution_value(width, height), label=label))
    return options


def csi_rates(camera: Mapping[str, Any]) -> list[SelectOptionDict]:
    """Common frame rates up to the camera's fastest mode."""
    rates = [m["fps"] for m in camera.get("modes") or [] if isinstance(m.get("fps"), int | float)]
    fastest = max(rates, default=max(COMMON_RATES))
    return [_rate_option(rate) for rate in COMMON_RATES if rate <= fastest + RATE_ROUNDING]


def card_formats(card: Mapping[str, Any], input_formats: Sequence[VocabularyWord]) -> list[SelectOptionDict]:
    """The input formats (the agent's words, with its names) a capture card lists as V4L2 fourccs."""
    by_fourcc = {
        str(fourcc): word for word in input_formats for fourcc in word.properties.get("fourccs") or []
    }
    options: dict[str, SelectOptionDict] = {}
    for fmt in card.get("formats") or []:
        if (word := by_fourcc.get(str(fmt.get("fourcc")))) is not None and word.id not in options:
            options[word.id] = SelectOptionDict(value=word.id, label=word.name)
    return list(options.values())


def card_resolutions(card: Mapping[str, Any]) -> list[SelectOptionDict]:
    """The sizes a card lists (any format), each with the frame rates it offers there."""
    sizes: dict[tuple[int, int], set[float]] = {}
    for fmt in card.get("formats") or []:
        for size in fmt.get("sizes") or []:
            if isinstance(size.get("width"), int) and isinstance(size.get("height"), int):
                rates = sizes.setdefault((size["width"], size["height"]), set())
                rates.update(float(rate) for rate in size.get("fps") or [])
    options: list[SelectOptionDict] = []
    for (width, height), rates in sorted(
        sizes.items(), key=lambda i: (i[0][0] * i[0][1], i[0][0]), reverse=True
    ):
        listed = ", ".join(_fmt(rate) for rate in sorted(rates, reverse=True))
        label = f"{width}×{height}" + (f" ({listed} fps)" if listed else "")
        options.append(SelectOptionDict(value=_resolution_value(width, height), label=label))
    return options


def card_rates(card: Mapping[str, Any]) -> list[SelectOptionDict]:
    rates = {
        float(rate)
        for fmt in card.get("formats") or []
        for size in fmt.get("sizes") or []
        for rate in size.get("fps") or []
    }
    return [_rate_option(rate) for rate in sorted(rates, reverse=True)]


def _with_value(options: list[SelectOptionDict], value: str, label: str) -> list[SelectOptionDict]:
    """``options``, plus ``value`` when missing from them (a current setting the device no longer lists)."""
    if value and all(option["value"] != value for option in options):
        return [SelectOptionDict(value=value, label=label), *options]
    return options


def _default(options: Sequence[SelectOptionDict], preferred: str) -> str:
    values = [option["value"] for option in options]
    return preferred if preferred in values else values[0]


def _words(words: Sequence[VocabularyWord]) -> list[SelectOptionDict]:
    return [SelectOptionDict(value=word.id, label=word.name) for word in words]


# -- the forms -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Form:
    """A form to show: its schema, the values it suggests, and the placeholders its texts use."""

    schema: vol.Schema
    suggested: dict[str, Any]
    placeholders: dict[str, str] = field(default_factory=dict)

    @property
    def fields(self) -> set[str]:
        return {str(key) for key in self.schema.schema}


class Limits:
    """The agent's numeric limits as selectors (bitrates in kbit/s, as the forms ask for them) and as the
    placeholders the field descriptions state them with."""

    def __init__(self, vocabulary: AgentVocabulary) -> None:
        self._limits = vocabulary.limits

    def _range(self, name: str) -> ValueRange:
        return self._limits[name]

    def size(self, name: str) -> NumberSelector:
        limit = self._range(name)
        return _number(limit.min, limit.max, limit.step or 1, "px")

    def fps(self) -> NumberSelector:
        limit = self._range("fps")
        return _number(limit.min, limit.max, "any", "fps")

    def bitrate(self) -> NumberSelector:
        limit = self._range("bitrate_bps")
        return _number(limit.min / 1000, limit.max / 1000, 1, "kbit/s")

    def keyframe_interval(self) -> NumberSelector:
        limit = self._range("keyframe_interval_s")
        return _number(limit.min, limit.max, 0.1, "s")

    def placeholders(self) -> dict[str, str]:
        width, height, fps = self._range("width"), self._range("height"), self._range("fps")
        bitrate, keyframe = self._range("bitrate_bps"), self._range("keyframe_interval_s")
        return {
            "width_min": _fmt(width.min),
            "width_max": _fmt(width.max),
            "height_min": _fmt(height.min),
            "height_max": _fmt(height.max),
            "fps_min": _fmt(fps.min),
            "fps_max": _fmt(fps.max),
            "bitrate_min": _fmt(bitrate.min / 1000),
            "bitrate_max": _fmt(bitrate.max / 1000),
            "keyframe_min": _fmt(keyframe.min),
            "keyframe_max": _fmt(keyframe.max),
        }


def _number(minimum: float, maximum: float, step: float | Literal["any"], unit: str) -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=minimum, max=maximum, step=step, unit_of_measurement=unit, mode=NumberSelectorMode.BOX
        )
    )


def _select(options: Sequence[SelectOptionDict], *, custom: bool = False) -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(options=list(options), mode=SelectSelectorMode.DROPDOWN, custom_value=custom)
    )


def settings_form(
    choice: SourceChoice, vocabulary: AgentVocabulary, current: Mapping[str, Any] | None
) -> Form:
    """The main stream's settings for this source: a test pattern's picture, width, height and rate, or a
    camera's or card's size and rate (from what it reports); then bitrate, keyframe interval, encoder and
    whether to add a substream. It suggests the ``current`` configuration when editing, else defaults that
    suit the source."""
    limits = Limits(vocabulary)
    device = choice.device or {}
    current = current or {}
    fields: dict[Any, Any] = {}
    suggested: dict[str, Any] = {}
    kinds_with_formats = False
    if choice.kind == "test":
        patterns = _words(vocabulary.test_patterns)
        current_pattern = str((current.get("source") or {}).get("pattern") or "")
        patterns = _with_value(patterns, current_pattern, current_pattern)
        fields[vol.Required(CONF_PATTERN)] = _select(patterns)
        fields[vol.Required(CONF_WIDTH)] = limits.size("width")
        fields[vol.Required(CONF_HEIGHT)] = limits.size("height")
        fields[vol.Required(CONF_FPS)] = limits.fps()
        suggested.update(TEST_DEFAULTS, pattern=patterns[0]["value"])
        if current:
            suggested.update(width=current["width"], height=current["height"], fps=current["fps"])
            suggested[CONF_PATTERN] = current_pattern or patterns[0]["value"]
    else:
        if choice.kind == "csi":
            resolutions, rates = csi_resolutions(device), csi_rates(device)
        else:
            kinds_with_formats = True
            formats = card_formats(device, vocabulary.input_formats) or _words(vocabulary.input_formats)
            resolutions, rates = card_resolutions(device), card_rates(device)
            current_format = str((current.get("source") or {}).get("input_format") or "")
            formats = _with_value(formats, current_format, current_format)
            fields[vol.Required(CONF_INPUT_FORMAT)] = _select(formats)
            suggested[CONF_INPUT_FORMAT] = current_format or _default(formats, DEFAULT_INPUT_FORMAT)
        resolution = _resolution_value(current["width"], current["height"]) if current else ""
        rate = _fmt(current["fps"]) if current else ""
        resolutions = resolutions or [
            SelectOptionDict(value=_resolution_value(w, h), label=f"{w}×{h}") for w, h in COMMON_SIZES
        ]
        rates = rates or [_rate_option(r) for r in COMMON_RATES]
        resolutions = _with_value(resolutions, resolution, resolution.replace("x", "×"))
        rates = _with_value(rates, rate, f"{rate} fps")
        fields[vol.Required(CONF_RESOLUTION)] = _select(resolutions, custom=True)
        fields[vol.Required(CONF_FPS)] = _select(rates, custom=True)
        suggested[CONF_RESOLUTION] = resolution or _default(resolutions, DEFAULT_RESOLUTION)
        suggested[CONF_FPS] = rate or _default(rates, _fmt(DEFAULT_FPS))
    fields[vol.Required(CONF_BITRATE)] = limits.bitrate()
    fields[vol.Required(CONF_KEYFRAME_INTERVAL)] = limits.keyframe_interval()
    # Passing a card's stream through needs a compressed input format: only a card has one to pass.
    can_copy = kinds_with_formats and any(w.properties.get("compressed") for w in vocabulary.input_formats)
    encoders = [word for word in vocabulary.encoders if word.id != COPY_ENCODER or can_copy]
    fields[vol.Required(CONF_ENCODER)] = _select(_words(encoders))
    for setting in orientation_settings(vocabulary, choice.kind):
        fields[vol.Optional(setting.id)] = _setting_selector(setting)
        suggested[setting.id] = _setting_value(setting, (current.get(CONF_SETTINGS) or {}).get(setting.id))
    fields[vol.Required(CONF_SUBSTREAM)] = BooleanSelector()
    encoder_ids = [word.id for word in encoders]
    suggested.update(
        {
            CONF_BITRATE: round(current["bitrate"] / 1000) if current else DEFAULT_BITRATE_KBPS,
            CONF_KEYFRAME_INTERVAL: current.get("keyframe_interval_s") or DEFAULT_KEYFRAME_INTERVAL_S,
            CONF_ENCODER: current.get("encoder") if current.get("encoder") in encoder_ids else encoder_ids[0],
            CONF_SUBSTREAM: bool(current.get("substream")),
        }
    )
    placeholders = {"source": choice.label, **limits.placeholders()}
    return Form(vol.Schema(fields), suggested, placeholders)


def orientation_settings(vocabulary: AgentVocabulary, source_type: str) -> tuple[StreamSetting, ...]:
    """The orientation settings (rotation, flips) the agent offers for this kind of source: the only
    picture settings the stream editor shows; the others are entities of the stream."""
    return vocabulary.settings_for(source_type, ORIENTATION_SETTINGS)


def _setting_selector(setting: StreamSetting) -> SelectSelector | BooleanSelector:
    if setting.kind == "select":
        return _select(_words(setting.options))
    return BooleanSelector()


def _setting_value(setting: StreamSetting, stored: Any) -> str | bool:
    """What the form shows for a stored value; absent (the camera's default) shows as the first choice
    (no rotation) or off (no flip)."""
    if setting.kind == "select":
        return str(stored) if stored is not None else setting.options[0].id
    return bool(stored)


def substream_form(
    vocabulary: AgentVocabulary, main: Mapping[str, Any], current: Mapping[str, Any] | None
) -> Form:
    """The substream's size, rate and bitrate: the ``current`` substream when there is one, else half the
    main stream's size, at most 10 fps, an eighth of its bitrate."""
    limits = Limits(vocabulary)
    schema = vol.Schema(
        {
            vol.Required(CONF_SUB_WIDTH): limits.size("width"),
            vol.Required(CONF_SUB_HEIGHT): limits.size("height"),
            vol.Required(CONF_SUB_FPS): limits.fps(),
            vol.Required(CONF_SUB_BITRATE): limits.bitrate(),
        }
    )
    if current:
        suggested = {
            CONF_SUB_WIDTH: current["width"],
            CONF_SUB_HEIGHT: current["height"],
            CONF_SUB_FPS: current["fps"],
            CONF_SUB_BITRATE: round(current["bitrate"] / 1000),
        }
    else:
        width, height = vocabulary.limits["width"], vocabulary.limits["height"]
        bitrate = vocabulary.limits["bitrate_bps"]
        suggested = {
            CONF_SUB_WIDTH: _half(main["width"], width),
            CONF_SUB_HEIGHT: _half(main["height"], height),
            CONF_SUB_FPS: min(float(main["fps"]), SUBSTREAM_MAX_DEFAULT_FPS),
            CONF_SUB_BITRATE: max(
                round(main["bitrate"] / SUBSTREAM_BITRATE_SHARE / 1000), bitrate.min / 1000
            ),
        }
    placeholders = {
        "main_width": str(main["width"]),
        "main_height": str(main["height"]),
        "main_fps": _fmt(main["fps"]),
        **limits.placeholders(),
    }
    return Form(schema, suggested, placeholders)


def _half(size: int, limit: ValueRange) -> int:
    step = int(limit.step or 1)
    return max(int(limit.min), size // 2 // step * step)


# -- form → stream configuration -----------------------------------------------------------------------------


def parse_resolution(value: str) -> tuple[int, int] | None:
    if match := _RESOLUTION.fullmatch(value):
        return int(match.group(1)), int(match.group(2))
    return None


def parse_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def main_config(
    stream_id: str,
    name: str | None,
    choice: SourceChoice,
    current: Mapping[str, Any] | None,
    user_input: Mapping[str, Any],
    *,
    vocabulary: AgentVocabulary,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The stream configuration ``PUT /streams/{id}`` takes, without its substream (``with_substream``
    adds one), or the form errors of values the form cannot read. What the agent keeps of the ``current``
    configuration (enabled, the RTSP paths recorders use, picture settings and camera controls set from
    the entities, the motion region and the sound: :data:`KEPT_AS_CONFIGURED`) stays."""
    errors: dict[str, str] = {}
    source = dict(choice.source)
    if choice.kind == "test":
        width, height = int(user_input[CONF_WIDTH]), int(user_input[CONF_HEIGHT])
        source["pattern"] = user_input[CONF_PATTERN]
    else:
        if choice.kind == "v4l2":
            source["input_format"] = user_input[CONF_INPUT_FORMAT]
        if (size := parse_resolution(str(user_input[CONF_RESOLUTION]))) is None:
            errors[CONF_RESOLUTION] = "invalid_resolution"
        width, height = size or (0, 0)
    if (fps := parse_number(user_input[CONF_FPS])) is None:
        errors[CONF_FPS] = "invalid_number"
    current = current or {}
    same_device = source == (current.get("source") or {}) or (
        source.get("type") == "v4l2" and source.get("device") == (current.get("source") or {}).get("device")
    )
    config: dict[str, Any] = {
        "id": stream_id,
        "name": name,
        "source": source,
        "width": width,
        "height": height,
        "fps": fps,
        "bitrate": round(float(user_input[CONF_BITRATE]) * 1000),
        "keyframe_interval_s": float(user_input[CONF_KEYFRAME_INTERVAL]),
        "encoder": user_input[CONF_ENCODER],
        "enabled": current.get("enabled", True),
        "rtsp_path": current.get("rtsp_path"),
        "substream": None,
    }
    if vocabulary.stream_settings:  # an agent from before picture settings knows neither key
        config[CONF_SETTINGS] = picture_settings(
            vocabulary, choice.kind, current.get(CONF_SETTINGS) or {}, user_input
        )
        # A card's controls belong to that card: another source starts from its defaults.
        config[CONF_V4L2_CONTROLS] = dict(current.get(CONF_V4L2_CONTROLS) or {}) if same_device else {}
    config.update({key: current[key] for key in KEPT_AS_CONFIGURED if key in current})
    return config, errors


def picture_settings(
    vocabulary: AgentVocabulary, source_type: str, stored: Mapping[str, Any], user_input: Mapping[str, Any]
) -> dict[str, Any]:
    """The stream's ``settings`` after the form: the stored ones this source can still have, with the
    orientation of the form. An orientation left at what the form showed for an absent one stays absent
    (the camera's default), so saving a form unchanged stores nothing new."""
    offered = {setting.id for setting in vocabulary.stream_settings if source_type in setting.sources}
    settings = {key: value for key, value in stored.items() if key in offered}
    for setting in orientation_settings(vocabulary, source_type):
        if setting.id not in user_input:
            continue
        value = user_input[setting.id]
        if setting.id not in stored and value == _setting_value(setting, None):
            continue
        settings[setting.id] = str(value) if setting.kind == "select" else bool(value)
    return settings


def with_substream(
    config: Mapping[str, Any], current: Mapping[str, Any] | None, user_input: Mapping[str, Any]
) -> dict[str, Any]:
    """``config`` with the substream of the substream form (keeping its current RTSP path, and whether it
    carries the sound)."""
    substream = (current or {}).get("substream") or {}
    return {
        **config,
        "substream": {
            "width": int(user_input[CONF_SUB_WIDTH]),
            "height": int(user_input[CONF_SUB_HEIGHT]),
            "fps": float(user_input[CONF_SUB_FPS]),
            "bitrate": round(float(user_input[CONF_SUB_BITRATE]) * 1000),
            "rtsp_path": substream.get("rtsp_path"),
            **{key: substream[key] for key in SUBSTREAM_KEPT_AS_CONFIGURED if key in substream},
        },
    }


# -- the agent's problems → the fields they concern ----------------------------------------------------------

# A problem's ``field`` (the agent's dotted key path) → the form field that sets it. Width and height are one
# field (``resolution``) for cameras and cards.
_AGENT_FIELDS = {
    "width": CONF_WIDTH,
    "height": CONF_HEIGHT,
    "width/height": CONF_WIDTH,
    "fps": CONF_FPS,
    "bitrate": CONF_BITRATE,
    "keyframe_interval_s": CONF_KEYFRAME_INTERVAL,
    "encoder": CONF_ENCODER,
    "source.input_format": CONF_INPUT_FORMAT,
    "source.pattern": CONF_PATTERN,
    "substream.width": CONF_SUB_WIDTH,
    "substream.height": CONF_SUB_HEIGHT,
    "substream.fps": CONF_SUB_FPS,
    "substream.bitrate": CONF_SUB_BITRATE,
    **{f"{CONF_SETTINGS}.{setting_id}": setting_id for setting_id in ORIENTATION_SETTINGS},
}
_SIZE_FIELDS = {CONF_WIDTH, CONF_HEIGHT}
# The error key that shows the agent's words at a field: options.error.refused_<field> is "{refused_<field>}".
REFUSED_PREFIX = "refused_"
REFUSED_FIELDS = tuple(dict.fromkeys([*_AGENT_FIELDS.values(), CONF_RESOLUTION]))


@dataclass(frozen=True)
class Refusal:
    """A refused change as form errors: each problem at its field (the error ``refused_<field>`` shows the
    placeholder of the same name), the rest in ``problems`` under the ``agent_refused`` summary."""

    errors: dict[str, str]
    placeholders: dict[str, str]


def form_field(agent_field: str | None, form_fields: Collection[str]) -> str | None:
    """The field of this form a problem belongs to; None when it belongs to none of them."""
    name = _AGENT_FIELDS.get(agent_field or "")
    if name in _SIZE_FIELDS and name not in form_fields:
        name = CONF_RESOLUTION
    return name if name in form_fields else None


def refusal(
    problems: Sequence[Mapping[str, Any]], stream_id: str, form_fields: Collection[str], fallback: str = ""
) -> Refusal:
    """Each error of ``problems`` (the agent's ``details.problems``) once, at the field of this form it
    concerns, in the agent's own plain sentence; problems of other streams or of no field here make the
    summary at the top (``fallback`` too, the agent's message, when it sent no problems at all)."""
    at_fields: dict[str, list[str]] = {}
    summary: list[str] = []
    for problem in problems:
        if problem.get("severity", "error") != "error":
            continue
        message = str(problem.get("message") or problem.get("text") or "").strip()
        ours = problem.get("stream_id") in (None, stream_id)
        name = form_field(problem.get("field"), form_fields) if ours else None
        target = at_fields.setdefault(name, []) if name is not None else summary
        if message not in target:
            target.append(message)
    if not problems and fallback:
        summary.append(fallback)
    errors = {name: REFUSED_PREFIX + name for name in at_fields}
    placeholders = {REFUSED_PREFIX + name: " ".join(messages) for name, messages in at_fields.items()}
    if summary:
        errors["base"] = "agent_refused"
    placeholders["problems"] = " ".join(summary)
    return Refusal(errors, placeholders)


def warning_text(warning: Any) -> str:
    """A warning of a taken change as a person reads it: the agent's plain ``message`` where it sends a
    problem object, else its text as it is."""
    if isinstance(warning, Mapping):
        return str(warning.get("message") or warning.get("text") or "")
    return str(warning)
