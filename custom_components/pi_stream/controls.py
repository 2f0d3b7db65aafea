"""A stream's picture settings and camera controls as entities: the code the select, number, switch and
button platforms share.

What a stream can be set to is the agent's per-stream controls document (``GET /streams/{id}/controls``,
held in :attr:`AgentState.controls`): the picture settings its camera really has (rotation, flips, focus,
exposure… — ids from the vocabulary's ``stream_settings``) and, for a USB camera or capture card, the
driver's V4L2 controls. Each entry becomes one entity on the platform its ``kind`` names, in the
configuration category, enabled by default where the agent says so:

- a setting (``"source": "setting"``) takes its translated name and states from its id (en.json mirrors the
  agent's words; a test against the real agent keeps them in step);
- a V4L2 control (``"v4l2:<name>"``) shows the driver's name as the agent reports it;
- a read-only control gets no entity (nothing to set); an inactive one (the driver ignores it now, e.g.
  the exposure time while auto exposure is on) is unavailable until it is active again.

A change is sent as ``PUT /streams/{id}/controls`` with that one value; the entity shows the new state only
from the agent's answer (the confirmed document) or a pushed ``stream_controls`` event, never before. A
refusal raises a translated error with the agent's plain sentence for that control.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.components.button import ButtonEntity
from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .api import PiStreamResponseError
from .const import DOMAIN
from .coordinator import PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamStreamEntity
from .services import agent_errors
from .vocabulary import SETTING_AUTOFOCUS

SOURCE_SETTING = "setting"  # a picture setting (vocabulary ``stream_settings``); else a camera control
FLAG_READ_ONLY = "read_only"
FLAG_INACTIVE = "inactive"
# Camera controls are named by the driver, not translated; this key gives them their icons (icons.json).
CAMERA_CONTROL_KEY = "camera_control"
# The agent's problem code for a refused value (docs/api.md, "Errors").
INVALID_CONFIG = "invalid_config"

# Makes the entity for one control; None when this integration has no entity for it.
ControlEntityFactory = Callable[[PiStreamCoordinator, str, Mapping[str, Any]], Entity | None]


class PiStreamControlEntity(PiStreamStreamEntity):
    """One entry of a stream's controls document. Unavailable while the agent is unreachable, while the
    stream's camera no longer lists the control, and while the driver marks it inactive."""

    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, coordinator: PiStreamCoordinator, stream_id: str, control: Mapping[str, Any]) -> None:
        self.control_id = str(control["id"])
        super().__init__(coordinator, stream_id, f"control_{self.control_id}")
        self._attr_entity_registry_enabled_default = bool(control.get("enabled_by_default", False))
        if control.get("source") == SOURCE_SETTING:
            self._attr_translation_key = self.control_id
        else:
            self._attr_translation_key = CAMERA_CONTROL_KEY
            self._attr_name = str(control.get("name") or self.control_id)

    @property
    def control(self) -> Mapping[str, Any]:
        """The control as the agent last confirmed it (empty when the camera no longer lists it)."""
        return self.coordinator.data.controls.get(self.stream_id, {}).get(self.control_id, {})

    @property
    def available(self) -> bool:
        control = self.control
        return super().available and bool(control) and not control.get(FLAG_INACTIVE, False)

    @property
    def control_value(self) -> Any:
        """The configured or current value; the camera's default when the agent reports one and nothing
        is configured (``value`` null)."""
        control = self.control
        value = control.get("value")
        return control.get("default") if value is None else value

    @property
    def control_name(self) -> str:
        return str(self.control.get("name") or self.control_id)

    async def async_set_control(self, value: Any) -> None:
        """Send one value; the state follows the agent's confirmed document."""
        placeholders = {"stream": self.stream_name, "control": self.control_name}
        with agent_errors("set_control_failed", placeholders):
            try:
                document = await self.coordinator.client.set_stream_controls(
                    self.stream_id, {self.control_id: value}
                )
            except PiStreamResponseError as err:
                if err.code != INVALID_CONFIG:
                    raise
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="control_refused",
                    translation_placeholders={**placeholders, "error": refusal_text(err, self.control_id)},
                ) from err
        self.coordinator.async_stream_controls(self.stream_id, document)

    @property
    def stream_name(self) -> str:
        return str(self.stream.get("name") or self.stream_id)


def refusal_text(err: PiStreamResponseError, control_id: str) -> str:
    """The agent's plain sentence about this control (its problem objects name it in ``field``), else its
    message."""
    problems = err.details.get("problems")
    if isinstance(problems, list):
        messages = [
            str(problem.get("message"))
            for problem in problems
            if isinstance(problem, Mapping) and problem.get("field") == control_id and problem.get("message")
        ]
        if messages:
            return " ".join(messages)
    return err.message


def offered(control: Mapping[str, Any], kind: str) -> bool:
    """Whether ``control`` becomes an entity of platform ``kind`` (read-only controls become none)."""
    return control.get("kind") == kind and not control.get(FLAG_READ_ONLY, False)


@callback
def async_add_control_entities(
    entry: PiStreamConfigEntry,
    async_add_entities: AddEntitiesCallback,
    kind: str,
    factory: ControlEntityFactory,
) -> None:
    """Add an entity of platform ``kind`` for every control the streams' cameras list now, and for each
    one that appears later (a new stream, another source, a camera plugged in) without a reload."""
    coordinator = entry.runtime_data
    known: set[tuple[str, str]] = set()

    @callback
    def add_new() -> None:
        new: list[Entity] = []
        for stream_id, controls in coordinator.data.controls.items():
            if stream_id not in coordinator.data.streams:
                continue
            for control_id, control in controls.items():
                if (stream_id, control_id) not in known and offered(control, kind):
                    known.add((stream_id, control_id))
                    if (entity := factory(coordinator, stream_id, control)) is not None:
                        new.append(entity)
        if new:
            async_add_entities(new)

    add_new()
    entry.async_on_unload(coordinator.async_add_listener(add_new))


class PiStreamAutofocusButton(PiStreamControlEntity, ButtonEntity):
    """One autofocus cycle (``POST /streams/{id}/autofocus``), where the camera has autofocus."""

    async def async_press(self) -> None:
        with agent_errors("autofocus_failed", {"stream": self.stream_name}):
            await self.coordinator.client.autofocus(self.stream_id)


def control_button(
    coordinator: PiStreamCoordinator, stream_id: str, control: Mapping[str, Any]
) -> Entity | None:
    """The button platform's entity for a button control: autofocus is the only action the agent has."""
    if control.get("id") != SETTING_AUTOFOCUS:
        return None
    return PiStreamAutofocusButton(coordinator, stream_id, control)
