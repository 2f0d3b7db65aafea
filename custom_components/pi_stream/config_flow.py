"""Config flow for pi_stream: manual set-up, zeroconf discovery, reauth and reconfigure. The options flow
edits the Pi's streams on the agent (which validates and persists them): nobody needs SSH to change one."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.helpers.service_info.zeroconf import ZeroconfServiceInfo

from .api import (
    SUPPORTED_API_VERSION,
    AgentInfo,
    PiStreamApiVersionError,
    PiStreamAuthenticationError,
    PiStreamClient,
    PiStreamError,
    PiStreamResponseError,
)
from .const import CONF_TOKEN, DEFAULT_PORT, DOMAIN, LOGGER
from .coordinator import PiStreamConfigEntry, PiStreamCoordinator

# -- the connection ----------------------------------------------------------------------------------------

HOST_SELECTOR = TextSelector(TextSelectorConfig(autocomplete="off"))
PORT_SELECTOR = NumberSelector(NumberSelectorConfig(min=1, max=65535, step=1, mode=NumberSelectorMode.BOX))
TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD, autocomplete="off"))

USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): HOST_SELECTOR,
        vol.Required(CONF_PORT, default=DEFAULT_PORT): PORT_SELECTOR,
        vol.Required(CONF_TOKEN): TOKEN_SELECTOR,
    }
)
TOKEN_SCHEMA = vol.Schema({vol.Required(CONF_TOKEN): TOKEN_SELECTOR})
RECONFIGURE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): HOST_SELECTOR,
        vol.Required(CONF_PORT): PORT_SELECTOR,
        vol.Optional(CONF_TOKEN): TOKEN_SELECTOR,
    }
)


def _api_major(value: Any) -> int | None:
    """The major of the zeroconf TXT ``api`` ("1", "1.2"); None when missing or unreadable."""
    try:
        return int(str(value).split(".", 1)[0])
    except ValueError:
        return None


class PiStreamConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up one Pi (one agent) per entry; the unique id is the agent's stable id."""

    VERSION = 1

    _discovered_host: str
    _discovered_port: int
    _discovered_name: str

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> PiStreamOptionsFlow:
        return PiStreamOptionsFlow()

    async def _async_probe(
        self, host: str, port: int, token: str
    ) -> tuple[AgentInfo | None, dict[str, str], dict[str, str]]:
        """Ask the agent who it is with this token: (info, form errors, description placeholders)."""
        client = PiStreamClient(host, port, token, async_get_clientsession(self.hass))
        try:
            return await client.info(), {}, {}
        except PiStreamAuthenticationError:
            return None, {CONF_TOKEN: "invalid_auth"}, {}
        except PiStreamApiVersionError as err:
            return (
                None,
                {"base": "incompatible_agent"},
                {"agent_api": str(err.agent_version), "supported_api": str(SUPPORTED_API_VERSION)},
            )
        except PiStreamError as err:
            LOGGER.debug("Cannot reach the pi_stream agent at %s:%s: %s", host, port, err)
            return None, {"base": "cannot_connect"}, {}
        except Exception:  # noqa: BLE001 - the form must stay usable whatever went wrong
            LOGGER.exception("Unexpected error talking to the pi_stream agent at %s:%s", host, port)
            return None, {"base": "unknown"}, {}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Manual set-up: host, port and token."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            host, port = user_input[CONF_HOST].strip(), int(user_input[CONF_PORT])
            token = user_input[CONF_TOKEN].strip()
            info, errors, placeholders = await self._async_probe(host, port, token)
            if info is not None:
                await self.async_set_unique_id(info.agent_id, raise_on_progress=False)
                data = {CONF_HOST: host, CONF_PORT: port, CONF_TOKEN: token}
                # The same Pi again: it may have moved, or its token changed; the probe proved both work.
                self._abort_if_unique_id_configured(updates=data)
                return self.async_create_entry(title=info.name, data=data)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_zeroconf(self, discovery_info: ZeroconfServiceInfo) -> ConfigFlowResult:
        """An agent announced itself (``_pi-stream._tcp.local.``, TXT ``id``, ``version``, ``api``)."""
        properties = discovery_info.properties
        if not (agent_id := properties.get("id")):
            return self.async_abort(reason="invalid_discovery_info")
        port = discovery_info.port or DEFAULT_PORT
        await self.async_set_unique_id(agent_id)
        self._abort_if_unique_id_configured(updates={CONF_HOST: discovery_info.host, CONF_PORT: port})
        if _api_major(properties.get("api")) != SUPPORTED_API_VERSION:
            return self.async_abort(
                reason="incompatible_agent",
                description_placeholders={
                    "agent_api": str(properties.get("api")),
                    "supported_api": str(SUPPORTED_API_VERSION),
                },
            )
        self._discovered_host = discovery_info.host
        self._discovered_port = port
        self._discovered_name = discovery_info.name.removesuffix(f".{discovery_info.type}")
        self.context["title_placeholders"] = {"name": self._discovered_name}
        return await self.async_step_zeroconf_confirm()

    async def async_step_zeroconf_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Confirm the discovered agent and enter its token."""
        errors: dict[str, str] = {}
        placeholders = {
            "name": self._discovered_name,
            "host": f"{self._discovered_host}:{self._discovered_port}",
        }
        if user_input is not None:
            token = user_input[CONF_TOKEN].strip()
            info, errors, extra = await self._async_probe(self._discovered_host, self._discovered_port, token)
            placeholders.update(extra)
            if info is not None:
                data = {CONF_HOST: self._discovered_host, CONF_PORT: self._discovered_port, CONF_TOKEN: token}
                await self.async_set_unique_id(info.agent_id, raise_on_progress=False)
                self._abort_if_unique_id_configured(updates=data)
                return self.async_create_entry(title=info.name, data=data)
        return self.async_show_form(
            step_id="zeroconf_confirm",
            data_schema=TOKEN_SCHEMA,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The agent answered 401: its token was rotated."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Enter the agent's new token."""
        entry = self._get_reauth_entry()
        host, port = entry.data[CONF_HOST], entry.data[CONF_PORT]
        errors: dict[str, str] = {}
        placeholders = {"name": entry.title, "host": f"{host}:{port}"}
        if user_input is not None:
            token = user_input[CONF_TOKEN].strip()
            info, errors, extra = await self._async_probe(host, port, token)
            placeholders.update(extra)
            if info is not None:
                await self.async_set_unique_id(info.agent_id)
                self._abort_if_unique_id_mismatch(reason="wrong_agent")
                return self.async_update_reload_and_abort(entry, data_updates={CONF_TOKEN: token})
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=TOKEN_SCHEMA,
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A new address (and optionally a new token) for the same agent."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders = {"name": entry.title}
        if user_input is not None:
            host, port = user_input[CONF_HOST].strip(), int(user_input[CONF_PORT])
            token = (user_input.get(CONF_TOKEN) or "").strip() or entry.data[CONF_TOKEN]
            info, errors, extra = await self._async_probe(host, port, token)
            placeholders.update(extra)
            if info is not None:
                await self.async_set_unique_id(info.agent_id)
                self._abort_if_unique_id_mismatch(reason="wrong_agent")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_HOST: host, CONF_PORT: port, CONF_TOKEN: token}
                )
        suggested = user_input or {CONF_HOST: entry.data[CONF_HOST], CONF_PORT: entry.data[CONF_PORT]}
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(RECONFIGURE_SCHEMA, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )


# -- the options flow: the Pi's streams ----------------------------------------------------------------------

CONF_STREAM = "stream"
CONF_STREAM_ID = "stream_id"
CONF_SOURCE = "source"
CONF_ENABLED_STREAMS = "enabled_streams"
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

# The agent's rules (docs/configuration.md, "Streams"); it checks them again and has the last word.
STREAM_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
TEST_PATTERNS = (
    "testsrc2",
    "testsrc",
    "smptebars",
    "smptehdbars",
    "pal75bars",
    "pal100bars",
    "rgbtestsrc",
    "yuvtestsrc",
    "mandelbrot",
    "life",
)
# V4L2 fourcc → ffmpeg's -input_format name, as the agent accepts it.
INPUT_FORMATS = {
    "MJPG": "mjpeg",
    "JPEG": "mjpeg",
    "H264": "h264",
    "YUYV": "yuyv422",
    "UYVY": "uyvy422",
    "NV12": "nv12",
    "YU12": "yuv420p",
    "RGB3": "rgb24",
    "BGR3": "bgr24",
}
COMMON_SIZES = ((1920, 1080), (1280, 720), (1024, 576), (960, 540), (800, 600), (640, 480), (640, 360))
COMMON_RATES = (5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 50.0, 60.0, 90.0, 120.0)
FPS_TOLERANCE = 1.01  # the agent's: a listed 29.97 or 120.13 meets a request of 30 or 120

DEFAULT_RESOLUTION = "1280x720"
DEFAULT_FPS = 30.0
DEFAULT_BITRATE_KBPS = 2000
DEFAULT_KEYFRAME_INTERVAL_S = 1.0
# Test patterns: small, so a try costs little CPU (they are encoded in software).
TEST_DEFAULTS = {CONF_PATTERN: "testsrc2", CONF_WIDTH: 640, CONF_HEIGHT: 360, CONF_FPS: 15}
SUB_DEFAULTS = {CONF_SUB_WIDTH: 320, CONF_SUB_HEIGHT: 180, CONF_SUB_FPS: 10, CONF_SUB_BITRATE: 250}

_RESOLUTION = re.compile(r"\s*(\d{1,5})\s*[xX×*]\s*(\d{1,5})\s*")


def _size_selector() -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(min=32, max=4096, step=2, unit_of_measurement="px", mode=NumberSelectorMode.BOX)
    )


def _fps_number_selector() -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=1, max=120, step="any", unit_of_measurement="fps", mode=NumberSelectorMode.BOX
        )
    )


def _bitrate_selector() -> NumberSelector:
    return NumberSelector(
        NumberSelectorConfig(
            min=50, max=50000, step=1, unit_of_measurement="kbit/s", mode=NumberSelectorMode.BOX
        )
    )


def _select(
    options: Sequence[SelectOptionDict], *, custom: bool = False, key: str | None = None
) -> SelectSelector:
    config = SelectSelectorConfig(
        options=list(options), mode=SelectSelectorMode.DROPDOWN, custom_value=custom
    )
    if key is not None:
        config["translation_key"] = key
    return SelectSelector(config)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _resolution_value(width: int, height: int) -> str:
    return f"{width}x{height}"


def _parse_resolution(value: str) -> tuple[int, int] | None:
    if match := _RESOLUTION.fullmatch(value):
        return int(match.group(1)), int(match.group(2))
    return None


def _parse_number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


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


def source_choices(
    devices: Mapping[str, Any], current: Mapping[str, Any] | None = None
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
    choices.append(SourceChoice("test", "test", {"type": "test"}))
    if current and _find_choice(choices, current) is None:
        if current.get("type") == "csi":
            camera = current.get("camera")
            choices.insert(0, SourceChoice(f"csi:{camera}", f"{camera}", {"type": "csi", "camera": camera}))
        elif current.get("type") == "v4l2":
            device = current.get("device")
            choices.insert(0, SourceChoice(f"v4l2:{device}", f"{device}", {"type": "v4l2", "device": device}))
    return choices


def _find_choice(choices: Sequence[SourceChoice], source: Mapping[str, Any]) -> SourceChoice | None:
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
    return [_rate_option(rate) for rate in COMMON_RATES if rate <= fastest * FPS_TOLERANCE]


def _rate_option(rate: float) -> SelectOptionDict:
    return SelectOptionDict(value=_fmt(rate), label=f"{_fmt(rate)} fps")


def card_formats(card: Mapping[str, Any]) -> list[SelectOptionDict]:
    """A capture card's formats as ffmpeg input formats (``mjpeg``, ``yuyv422``…)."""
    options: dict[str, SelectOptionDict] = {}
    for fmt in card.get("formats") or []:
        fourcc = str(fmt.get("fourcc"))
        if (name := INPUT_FORMATS.get(fourcc)) is not None and name not in options:
            description = fmt.get("description") or fourcc
            options[name] = SelectOptionDict(value=name, label=f"{name} ({description})")
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


@dataclass
class StreamDraft:
    """The stream being added or edited."""

    stream_id: str
    current: dict[str, Any] | None  # its configuration as the agent holds it; None for a new stream
    name: str | None = None
    choice: SourceChoice = field(default_factory=lambda: SourceChoice("test", "test", {"type": "test"}))


class PiStreamOptionsFlow(OptionsFlow):
    """A menu: add, edit, enable/disable and remove the Pi's streams. Every change goes to the agent at once
    (``PUT``/``DELETE /streams/{id}``), which validates it against the Pi and persists it."""

    def __init__(self) -> None:
        self._streams: dict[str, dict[str, Any]] = {}
        self._devices: dict[str, Any] = {}
        self._warnings: list[str] = []
        self._draft: StreamDraft | None = None

    @property
    def _coordinator(self) -> PiStreamCoordinator:
        entry = cast(PiStreamConfigEntry, self.config_entry)
        return entry.runtime_data

    # -- the menu ----------------------------------------------------------------------------------------

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The menu, with the Pi's streams as the agent has them now (and what it said about the last
        change); read afresh each time, so it shows the result of every change."""
        if self.config_entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        client = self._coordinator.client
        try:
            listing = await client.streams()
            self._devices = await client.devices()
        except PiStreamError as err:
            return self.async_abort(reason="cannot_connect", description_placeholders={"error": str(err)})
        self._streams = {str(stream["id"]): stream for stream in listing.get("streams", [])}
        menu = ["add_stream"]
        if self._streams:
            menu += ["edit_stream", "enable_streams", "remove_stream"]
        menu.append("done")
        lines = [
            f"- {stream.get('name') or stream_id} ({stream_id}): {stream.get('state')}"
            for stream_id, stream in self._streams.items()
        ]
        return self.async_show_menu(
            step_id="init",
            menu_options=menu,
            description_placeholders={
                "streams": "\n".join(lines) or "-",
                "warnings": "\n".join(f"- {warning}" for warning in self._warnings),
            },
        )

    async def async_step_done(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Close the menu. The streams live on the agent; the entry's own options stay as they are."""
        return self.async_create_entry(data=dict(self.config_entry.options))

    def _stream_options(self) -> list[SelectOptionDict]:
        return [
            SelectOptionDict(value=stream_id, label=f"{stream.get('name') or stream_id} ({stream_id})")
            for stream_id, stream in self._streams.items()
        ]

    # -- add and edit ------------------------------------------------------------------------------------

    def _source_selector(self, choices: Sequence[SourceChoice]) -> SelectSelector:
        return _select([SelectOptionDict(value=c.value, label=c.label) for c in choices], key="source")

    async def async_step_add_stream(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A new stream: its id, name and source."""
        errors: dict[str, str] = {}
        choices = source_choices(self._devices)
        if user_input is not None:
            stream_id = user_input[CONF_STREAM_ID].strip()
            if not STREAM_ID_PATTERN.fullmatch(stream_id):
                errors[CONF_STREAM_ID] = "invalid_stream_id"
            elif stream_id in self._streams:
                errors[CONF_STREAM_ID] = "stream_exists"
            else:
                self._draft = StreamDraft(
                    stream_id,
                    None,
                    (user_input.get(CONF_NAME) or "").strip() or None,
                    next(c for c in choices if c.value == user_input[CONF_SOURCE]),
                )
                return await self.async_step_stream_settings()
        schema = vol.Schema(
            {
                vol.Required(CONF_STREAM_ID): TextSelector(),
                vol.Optional(CONF_NAME): TextSelector(),
                vol.Required(CONF_SOURCE, default=choices[0].value): self._source_selector(choices),
            }
        )
        return self.async_show_form(
            step_id="add_stream",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_edit_stream(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Which stream to edit."""
        if user_input is not None:
            stream_id = user_input[CONF_STREAM]
            self._draft = StreamDraft(stream_id, dict(self._streams[stream_id]["config"]))
            return await self.async_step_edit_source()
        return self.async_show_form(
            step_id="edit_stream",
            data_schema=vol.Schema({vol.Required(CONF_STREAM): _select(self._stream_options())}),
        )

    async def async_step_edit_source(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The edited stream's name and source."""
        draft = self._draft
        assert draft is not None and draft.current is not None
        current_source = draft.current.get("source") or {}
        choices = source_choices(self._devices, current_source)
        if user_input is not None:
            draft.name = (user_input.get(CONF_NAME) or "").strip() or None
            draft.choice = next(c for c in choices if c.value == user_input[CONF_SOURCE])
            return await self.async_step_stream_settings()
        current = _find_choice(choices, current_source) or choices[0]
        schema = vol.Schema(
            {
                vol.Optional(CONF_NAME): TextSelector(),
                vol.Required(CONF_SOURCE): self._source_selector(choices),
            }
        )
        suggested = {CONF_NAME: draft.current.get("name") or "", CONF_SOURCE: current.value}
        return self.async_show_form(
            step_id="edit_source",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            description_placeholders={"stream": draft.stream_id},
        )

    def _settings_schema(self, draft: StreamDraft) -> tuple[vol.Schema, dict[str, Any]]:
        """The settings form for this source kind, and what it suggests (the current configuration when
        editing, else defaults that suit the source)."""
        choice, current = draft.choice, draft.current or {}
        device = choice.device or {}
        fields: dict[Any, Any] = {}
        suggested: dict[str, Any] = {}
        resolution = _resolution_value(current["width"], current["height"]) if current else ""
        rate = _fmt(current["fps"]) if current else ""
        if choice.kind == "test":
            fields[vol.Required(CONF_PATTERN)] = _select(
                [SelectOptionDict(value=p, label=p) for p in TEST_PATTERNS]
            )
            fields[vol.Required(CONF_WIDTH)] = _size_selector()
            fields[vol.Required(CONF_HEIGHT)] = _size_selector()
            fields[vol.Required(CONF_FPS)] = _fps_number_selector()
            suggested.update(TEST_DEFAULTS)
            if current:
                suggested.update({CONF_WIDTH: current["width"], CONF_HEIGHT: current["height"]})
                suggested[CONF_FPS] = current["fps"]
                suggested[CONF_PATTERN] = (current.get("source") or {}).get("pattern") or "testsrc2"
        else:
            if choice.kind == "csi":
                resolutions = csi_resolutions(device)
                rates = csi_rates(device)
            else:
                formats = card_formats(device) or [
                    SelectOptionDict(value=name, label=name) for name in ("mjpeg", "h264", "yuyv422")
                ]
                resolutions = card_resolutions(device)
                rates = card_rates(device)
                current_format = str((current.get("source") or {}).get("input_format") or "")
                formats = _with_value(formats, current_format, current_format)
                fields[vol.Required(CONF_INPUT_FORMAT)] = _select(formats)
                suggested[CONF_INPUT_FORMAT] = current_format or _default(formats, "mjpeg")
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
        fields[vol.Required(CONF_BITRATE)] = _bitrate_selector()
        fields[vol.Required(CONF_KEYFRAME_INTERVAL)] = NumberSelector(
            NumberSelectorConfig(
                min=0.2, max=10, step=0.1, unit_of_measurement="s", mode=NumberSelectorMode.BOX
            )
        )
        encoders = ["auto", "hardware", "software"] + (["copy"] if choice.kind == "v4l2" else [])
        fields[vol.Required(CONF_ENCODER)] = _select(
            [SelectOptionDict(value=e, label=e) for e in encoders], key="encoder"
        )
        fields[vol.Required(CONF_SUBSTREAM)] = BooleanSelector()
        fields[vol.Optional(CONF_SUB_WIDTH)] = _size_selector()
        fields[vol.Optional(CONF_SUB_HEIGHT)] = _size_selector()
        fields[vol.Optional(CONF_SUB_FPS)] = _fps_number_selector()
        fields[vol.Optional(CONF_SUB_BITRATE)] = _bitrate_selector()
        sub = current.get("substream") or {}
        suggested.update(
            {
                CONF_BITRATE: round(current["bitrate"] / 1000) if current else DEFAULT_BITRATE_KBPS,
                CONF_KEYFRAME_INTERVAL: current.get("keyframe_interval_s") or DEFAULT_KEYFRAME_INTERVAL_S,
                CONF_ENCODER: current.get("encoder") if current.get("encoder") in encoders else "auto",
                CONF_SUBSTREAM: bool(sub),
                **SUB_DEFAULTS,
            }
        )
        if sub:
            suggested.update(
                {
                    CONF_SUB_WIDTH: sub["width"],
                    CONF_SUB_HEIGHT: sub["height"],
                    CONF_SUB_FPS: sub["fps"],
                    CONF_SUB_BITRATE: round(sub["bitrate"] / 1000),
                }
            )
        return vol.Schema(fields), suggested

    def _build_config(
        self, draft: StreamDraft, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The stream configuration the agent takes (``PUT /streams/{id}``), or form errors."""
        errors: dict[str, str] = {}
        source = dict(draft.choice.source)
        if draft.choice.kind == "test":
            width, height = int(user_input[CONF_WIDTH]), int(user_input[CONF_HEIGHT])
            source["pattern"] = user_input[CONF_PATTERN]
        else:
            if draft.choice.kind == "v4l2":
                source["input_format"] = user_input[CONF_INPUT_FORMAT]
            if (size := _parse_resolution(str(user_input[CONF_RESOLUTION]))) is None:
                errors[CONF_RESOLUTION] = "invalid_resolution"
            width, height = size or (0, 0)
        if (fps := _parse_number(user_input[CONF_FPS])) is None:
            errors[CONF_FPS] = "invalid_number"
        current = draft.current or {}
        config: dict[str, Any] = {
            "id": draft.stream_id,
            "name": draft.name,
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
        if user_input[CONF_SUBSTREAM]:
            missing = [
                key
                for key in (CONF_SUB_WIDTH, CONF_SUB_HEIGHT, CONF_SUB_FPS, CONF_SUB_BITRATE)
                if key not in user_input
            ]
            errors.update(dict.fromkeys(missing, "substream_incomplete"))
            if not missing:
                config["substream"] = {
                    "width": int(user_input[CONF_SUB_WIDTH]),
                    "height": int(user_input[CONF_SUB_HEIGHT]),
                    "fps": float(user_input[CONF_SUB_FPS]),
                    "bitrate": round(float(user_input[CONF_SUB_BITRATE]) * 1000),
                    "rtsp_path": (current.get("substream") or {}).get("rtsp_path"),
                }
        return config, errors

    async def async_step_stream_settings(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Resolution, frame rate, bitrate, keyframe interval, encoder and substream, from what the source
        offers; sent to the agent, whose refusal is shown here with its reasons."""
        draft = self._draft
        assert draft is not None
        schema, suggested = self._settings_schema(draft)
        errors: dict[str, str] = {}
        placeholders = {"stream": draft.stream_id, "source": draft.choice.label, "problems": "", "error": ""}
        if user_input is not None:
            config, errors = self._build_config(draft, user_input)
            if not errors:
                if (err := await self._async_put(draft.stream_id, config)) is None:
                    self._draft = None
                    return await self.async_step_init()
                errors, placeholders = _agent_error(err)
                placeholders.update(stream=draft.stream_id, source=draft.choice.label)
                errors.update(_field_errors(err, draft, schema))
            suggested = user_input
        return self.async_show_form(
            step_id="stream_settings",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    # -- enable/disable and remove -----------------------------------------------------------------------

    async def async_step_enable_streams(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Tick the streams that should run; the others are disabled (kept, but not published)."""
        errors: dict[str, str] = {}
        placeholders = {"problems": "", "error": ""}
        if user_input is not None:
            wanted = set(user_input[CONF_ENABLED_STREAMS])
            for stream_id, stream in self._streams.items():
                config = stream["config"]
                if bool(config.get("enabled", True)) == (stream_id in wanted):
                    continue
                if (
                    err := await self._async_put(stream_id, {**config, "enabled": stream_id in wanted})
                ) is not None:
                    errors, placeholders = _agent_error(err)
                    break
            if not errors:
                return await self.async_step_init()
        enabled = [sid for sid, stream in self._streams.items() if stream["config"].get("enabled", True)]
        schema = vol.Schema(
            {
                vol.Optional(CONF_ENABLED_STREAMS, default=enabled): SelectSelector(
                    SelectSelectorConfig(
                        options=self._stream_options(), multiple=True, mode=SelectSelectorMode.LIST
                    )
                )
            }
        )
        return self.async_show_form(
            step_id="enable_streams", data_schema=schema, errors=errors, description_placeholders=placeholders
        )

    async def async_step_remove_stream(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Stop a stream and delete it from the agent's configuration; its device goes too."""
        errors: dict[str, str] = {}
        placeholders = {"problems": "", "error": ""}
        if user_input is not None:
            stream_id = user_input[CONF_STREAM]
            try:
                await self._coordinator.client.delete_stream(stream_id)
            except PiStreamError as err:
                # Removed elsewhere meanwhile: that is what was asked for.
                if not (isinstance(err, PiStreamResponseError) and err.code == "stream_not_found"):
                    errors, placeholders = _agent_error(err)
            if not errors:
                self._remove_stream_device(stream_id)
                await self._async_refresh()
                return await self.async_step_init()
        return self.async_show_form(
            step_id="remove_stream",
            data_schema=vol.Schema({vol.Required(CONF_STREAM): _select(self._stream_options())}),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _remove_stream_device(self, stream_id: str) -> None:
        registry = dr.async_get(self.hass)
        agent_id = self.config_entry.unique_id
        if device := registry.async_get_device(identifiers={(DOMAIN, f"{agent_id}_{stream_id}")}):
            registry.async_update_device(device.id, remove_config_entry_id=self.config_entry.entry_id)

    # -- talking to the agent ----------------------------------------------------------------------------

    async def _async_put(self, stream_id: str, config: Mapping[str, Any]) -> PiStreamError | None:
        """Send one stream's configuration; the error when the agent refused it or could not be asked."""
        try:
            result = await self._coordinator.client.put_stream(stream_id, config)
        except PiStreamError as err:
            return err
        self._warnings = [str(warning) for warning in result.get("warnings") or []]
        await self._async_refresh()
        return None

    async def _async_refresh(self) -> None:
        """Read the streams again now, not after the debouncer's cool-down (pushed stream events request
        refreshes too): a new stream's entities appear at once (entity.async_add_stream_entities)."""
        await self._coordinator.async_refresh()


def _field_errors(err: PiStreamError, draft: StreamDraft, schema: vol.Schema) -> dict[str, str]:
    """Mark the form fields the agent's problems name (``details.problems[].field``)."""
    if not isinstance(err, PiStreamResponseError):
        return {}
    size_fields = (
        (CONF_WIDTH, CONF_HEIGHT) if draft.choice.kind == "test" else (CONF_RESOLUTION, CONF_RESOLUTION)
    )
    fields = {
        "width": size_fields[0],
        "height": size_fields[1],
        "width/height": size_fields[0],
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
    }
    in_form = {str(key) for key in schema.schema}
    return {
        name: "refused"
        for problem in _problems(err)
        if problem.get("stream_id") in (None, draft.stream_id)
        and (name := fields.get(str(problem.get("field")))) in in_form
    }


def _problems(err: PiStreamResponseError) -> list[dict[str, Any]]:
    problems = err.details.get("problems")
    return [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else []


def _agent_error(err: PiStreamError) -> tuple[dict[str, str], dict[str, str]]:
    """A failed change as form errors: the agent's reasons when it refused, else why it could not be asked."""
    if isinstance(err, PiStreamResponseError):
        lines = [
            f"- {p.get('text') or p.get('message')}"
            for p in _problems(err)
            if p.get("severity", "error") == "error"
        ]
        return {"base": "agent_refused"}, {"problems": "\n".join(lines) or err.message, "error": ""}
    return {"base": "cannot_connect"}, {"problems": "", "error": str(err)}
