"""Config flow for pi_stream: manual set-up, zeroconf discovery, reauth and reconfigure. The options flow
edits the Pi's streams on the agent (which validates and persists them): nobody needs SSH to change one.

The flow steps are here; the stream editor's forms, and how the agent's refusals reach their fields, are
pure functions in ``stream_form.py``."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
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
from .device_info import stream_device_identifier
from .stream_form import (
    CONF_SUBSTREAM,
    SourceChoice,
    find_choice,
    main_config,
    pattern_choice,
    refusal,
    settings_form,
    source_choices,
    substream_form,
    warning_text,
    with_substream,
)
from .vocabulary import AgentVocabulary

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

    def _abort_if_known(self, data: Mapping[str, Any]) -> None:
        """Abort when this Pi is set up already, saving what this flow learnt about it (the entry reloads
        when that changed anything), and say only what changed: its address, its token, or nothing."""
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, self.unique_id or "")
        changed = {key for key, value in data.items() if entry is not None and entry.data.get(key) != value}
        reason = "already_configured"
        if changed & {CONF_HOST, CONF_PORT}:
            reason = "address_updated"
        elif CONF_TOKEN in changed:
            reason = "token_updated"
        self._abort_if_unique_id_configured(updates=dict(data), error=reason)

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
                self._abort_if_known(data)
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
        self._abort_if_known({CONF_HOST: discovery_info.host, CONF_PORT: port})
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
                self._abort_if_known(data)
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


def stream_label(stream_id: str, stream: Mapping[str, Any]) -> str:
    """What a person calls a stream: its name, else its id."""
    return str(stream.get("name") or stream_id)


def _select(options: Sequence[SelectOptionDict]) -> SelectSelector:
    return SelectSelector(SelectSelectorConfig(options=list(options), mode=SelectSelectorMode.DROPDOWN))


def _source_selector(choices: Sequence[SourceChoice]) -> SelectSelector:
    return _select([SelectOptionDict(value=c.value, label=c.label) for c in choices])


@dataclass
class StreamDraft:
    """The stream being added or edited, from step to step."""

    stream_id: str
    current: dict[str, Any] | None  # its configuration as the agent holds it; None for a new stream
    choice: SourceChoice
    name: str | None = None
    # The main stream's configuration from the settings step, while the substream step is open.
    config: dict[str, Any] | None = field(default=None)

    @property
    def label(self) -> str:
        return self.name or self.stream_id


class PiStreamOptionsFlow(OptionsFlow):
    """A menu: add, edit, enable/disable and remove the Pi's streams. Every change goes to the agent at once
    (``PUT``/``DELETE /streams/{id}``), which validates it against the Pi and persists it."""

    def __init__(self) -> None:
        self._streams: dict[str, dict[str, Any]] = {}
        self._devices: dict[str, Any] = {}
        self._vocabulary: AgentVocabulary | None = None
        self._warnings: list[str] = []
        self._draft: StreamDraft | None = None
        self._removing: str | None = None

    @property
    def _coordinator(self) -> PiStreamCoordinator:
        entry = cast(PiStreamConfigEntry, self.config_entry)
        return entry.runtime_data

    @property
    def _words(self) -> AgentVocabulary:
        assert self._vocabulary is not None  # read by the menu, which every step comes from
        return self._vocabulary

    # -- the menu ----------------------------------------------------------------------------------------

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The menu, with the Pi's streams as the agent has them now (and what it said about the last
        change); read afresh each time, so it shows the result of every change. The agent's vocabulary
        (names of states, sources, patterns, encoders; limits) is read once per flow: it never changes
        while the agent runs."""
        if self.config_entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="not_loaded")
        client = self._coordinator.client
        try:
            listing = await client.streams()
            self._devices = await client.devices()
            if self._vocabulary is None:
                self._vocabulary = AgentVocabulary.from_json(await client.vocabulary())
        except PiStreamError as err:
            return self.async_abort(reason="cannot_connect", description_placeholders={"error": str(err)})
        self._streams = {str(stream["id"]): stream for stream in listing.get("streams", [])}
        menu = ["add_stream"]
        if self._streams:
            menu += ["edit_stream", "enable_streams", "remove_stream"]
        menu.append("done")
        states = self._words.state_names
        lines = [
            f"- {stream_label(stream_id, stream)}: {states.get(stream['state'], stream['state'])}"
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

    def _stream_selector(self) -> SelectSelector:
        return _select(
            [
                SelectOptionDict(value=stream_id, label=stream_label(stream_id, stream))
                for stream_id, stream in self._streams.items()
            ]
        )

    # -- add and edit ------------------------------------------------------------------------------------

    async def async_step_add_stream(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A new stream: its id, name and source."""
        errors: dict[str, str] = {}
        choices = source_choices(self._devices, self._words)
        if user_input is not None:
            stream_id = user_input[CONF_STREAM_ID].strip()
            if not re.fullmatch(self._words.stream_id_pattern, stream_id):
                errors[CONF_STREAM_ID] = "invalid_stream_id"
            elif stream_id in self._streams:
                errors[CONF_STREAM_ID] = "stream_exists"
            else:
                self._draft = StreamDraft(
                    stream_id,
                    None,
                    next(c for c in choices if c.value == user_input[CONF_SOURCE]),
                    (user_input.get(CONF_NAME) or "").strip() or None,
                )
                return await self._async_show_settings()
        schema = vol.Schema(
            {
                vol.Required(CONF_STREAM_ID): TextSelector(),
                vol.Optional(CONF_NAME): TextSelector(),
                vol.Required(CONF_SOURCE, default=choices[0].value): _source_selector(choices),
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
            current = dict(self._streams[stream_id]["config"])
            self._draft = StreamDraft(stream_id, current, pattern_choice(self._words), current.get("name"))
            return await self.async_step_edit_source()
        return self.async_show_form(
            step_id="edit_stream",
            data_schema=vol.Schema({vol.Required(CONF_STREAM): self._stream_selector()}),
        )

    async def async_step_edit_source(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The edited stream's name and source."""
        draft = self._draft
        assert draft is not None and draft.current is not None
        current_source = draft.current.get("source") or {}
        choices = source_choices(self._devices, self._words, current_source)
        if user_input is not None:
            draft.name = (user_input.get(CONF_NAME) or "").strip() or None
            draft.choice = next(c for c in choices if c.value == user_input[CONF_SOURCE])
            return await self._async_show_settings()
        current = find_choice(choices, current_source) or choices[0]
        schema = vol.Schema(
            {
                vol.Optional(CONF_NAME): TextSelector(),
                vol.Required(CONF_SOURCE): _source_selector(choices),
            }
        )
        suggested = {CONF_NAME: draft.current.get("name") or "", CONF_SOURCE: current.value}
        return self.async_show_form(
            step_id="edit_source",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            description_placeholders={"stream": draft.label},
        )

    async def _async_show_settings(self) -> ConfigFlowResult:
        """The settings step for the draft's source: a test pattern's, or a camera's or card's."""
        assert self._draft is not None
        if self._draft.choice.kind == "test":
            return await self.async_step_pattern_settings()
        return await self.async_step_stream_settings()

    async def async_step_stream_settings(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A camera's or card's size, rate (from what it reports), bitrate, keyframe interval and encoder."""
        return await self._async_settings("stream_settings", user_input)

    async def async_step_pattern_settings(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A test pattern's picture, size, rate, bitrate, keyframe interval and encoder."""
        return await self._async_settings("pattern_settings", user_input)

    async def _async_settings(self, step_id: str, user_input: dict[str, Any] | None) -> ConfigFlowResult:
        """The main stream's settings. Without a substream they go to the agent at once; with one the agent
        checks them first (so a refusal shows here, at its field), then the substream step follows."""
        draft = self._draft
        assert draft is not None
        form = settings_form(draft.choice, self._words, draft.current)
        errors: dict[str, str] = {}
        placeholders = {**form.placeholders, "stream": draft.label}
        if user_input is not None:
            config, errors = main_config(
                draft.stream_id, draft.name, draft.choice, draft.current, user_input, vocabulary=self._words
            )
            if not errors:
                if user_input[CONF_SUBSTREAM]:
                    errors, extra = await self._async_check(draft.stream_id, config, form.fields)
                    if not errors:
                        draft.config = config
                        return await self.async_step_substream()
                else:
                    errors, extra = await self._async_save(draft.stream_id, config, form.fields)
                    if not errors:
                        self._draft = None
                        return await self.async_step_init()
                placeholders.update(extra)
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(form.schema, user_input or form.suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_substream(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The substream's size, rate and bitrate; then the whole stream goes to the agent."""
        draft = self._draft
        assert draft is not None and draft.config is not None
        form = substream_form(self._words, draft.config, (draft.current or {}).get("substream"))
        errors: dict[str, str] = {}
        placeholders = {**form.placeholders, "stream": draft.label}
        if user_input is not None:
            config = with_substream(draft.config, draft.current, user_input)
            errors, extra = await self._async_save(draft.stream_id, config, form.fields)
            if not errors:
                self._draft = None
                return await self.async_step_init()
            placeholders.update(extra)
        return self.async_show_form(
            step_id="substream",
            data_schema=self.add_suggested_values_to_schema(form.schema, user_input or form.suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    # -- enable/disable and remove -----------------------------------------------------------------------

    async def async_step_enable_streams(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Tick the streams that should run; the others are disabled (kept, but not published)."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            wanted = set(user_input[CONF_ENABLED_STREAMS])
            for stream_id, stream in self._streams.items():
                config = stream["config"]
                if bool(config.get("enabled", True)) == (stream_id in wanted):
                    continue
                errors, placeholders = await self._async_save(
                    stream_id, {**config, "enabled": stream_id in wanted}, ()
                )
                if errors:
                    break
            if not errors:
                return await self.async_step_init()
        enabled = [sid for sid, stream in self._streams.items() if stream["config"].get("enabled", True)]
        schema = vol.Schema(
            {
                vol.Optional(CONF_ENABLED_STREAMS, default=enabled): SelectSelector(
                    SelectSelectorConfig(
                        options=[
                            SelectOptionDict(value=stream_id, label=stream_label(stream_id, stream))
                            for stream_id, stream in self._streams.items()
                        ],
                        multiple=True,
                        mode=SelectSelectorMode.LIST,
                    )
                )
            }
        )
        return self.async_show_form(
            step_id="enable_streams", data_schema=schema, errors=errors, description_placeholders=placeholders
        )

    async def async_step_remove_stream(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Which stream to remove; the next step says what goes with it and asks to confirm."""
        if user_input is not None:
            self._removing = user_input[CONF_STREAM]
            return await self.async_step_confirm_remove()
        return self.async_show_form(
            step_id="remove_stream",
            data_schema=vol.Schema({vol.Required(CONF_STREAM): self._stream_selector()}),
        )

    async def async_step_confirm_remove(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Stop the stream and delete it from the agent's configuration; its device goes too."""
        stream_id = self._removing
        assert stream_id is not None
        errors: dict[str, str] = {}
        placeholders = {"stream": stream_label(stream_id, self._streams.get(stream_id, {}))}
        if user_input is not None:
            try:
                await self._coordinator.client.delete_stream(stream_id)
            except PiStreamError as err:
                # Removed elsewhere meanwhile: that is what was asked for.
                if not (isinstance(err, PiStreamResponseError) and err.code == "stream_not_found"):
                    errors, extra = _failure(err, stream_id, ())
                    placeholders.update(extra)
            if not errors:
                self._removing = None
                self._remove_stream_device(stream_id)
                await self._async_refresh()
                return await self.async_step_init()
        return self.async_show_form(
            step_id="confirm_remove",
            data_schema=vol.Schema({}),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _remove_stream_device(self, stream_id: str) -> None:
        registry = dr.async_get(self.hass)
        agent_id = str(self.config_entry.unique_id)
        if device := registry.async_get_device(identifiers={stream_device_identifier(agent_id, stream_id)}):
            registry.async_update_device(device.id, remove_config_entry_id=self.config_entry.entry_id)

    # -- talking to the agent ----------------------------------------------------------------------------

    async def _async_save(
        self, stream_id: str, config: Mapping[str, Any], form_fields: Collection[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Send one stream's configuration: no errors when the agent took it, else the form errors (and
        their placeholders) of its refusal or of why it could not be asked."""
        try:
            result = await self._coordinator.client.put_stream(stream_id, config)
        except PiStreamError as err:
            return _failure(err, stream_id, form_fields)
        self._warnings = [warning_text(warning) for warning in result.get("warnings") or []]
        await self._async_refresh()
        return {}, {}

    async def _async_check(
        self, stream_id: str, config: Mapping[str, Any], form_fields: Collection[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Ask the agent whether it would take this configuration (``POST /streams/validate``), storing
        nothing: no errors when it would, else the form errors as for a refused change."""
        try:
            result = await self._coordinator.client.validate_stream(config)
        except PiStreamError as err:
            return _failure(err, stream_id, form_fields)
        if result.get("valid", False):
            return {}, {}
        answer = refusal(result.get("problems") or [], stream_id, form_fields)
        return answer.errors, answer.placeholders

    async def _async_refresh(self) -> None:
        """Read the streams again now, not after the debouncer's cool-down (pushed stream events request
        refreshes too): a new stream's entities appear at once (entity.async_add_stream_entities)."""
        await self._coordinator.async_refresh()


def _failure(
    err: PiStreamError, stream_id: str, form_fields: Collection[str]
) -> tuple[dict[str, str], dict[str, str]]:
    """A failed change as form errors: the agent's problems at their fields when it refused it (its
    message when it named none), else why it could not be asked."""
    if isinstance(err, PiStreamResponseError):
        problems = err.details.get("problems")
        listed = [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else []
        answer = refusal(listed, stream_id, form_fields, err.message)
        return answer.errors, answer.placeholders
    return {"base": "cannot_connect"}, {"error": str(err)}
