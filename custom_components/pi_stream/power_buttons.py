"""The Pi's housekeeping buttons (button.py adds them): restart the agent, reboot, shut down.

They exist only while the agent says it may do these (``capabilities.power_control`` in ``GET /info``,
which follows ``allow_power_control`` in its configuration and the privilege rule the package installs;
docs/install.md). A Pi whose agent is told to allow them later gets the buttons when Home Assistant next
reads who the agent is (a reconnect), without a reload. A press the agent refuses shows its own words.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.button import ButtonDeviceClass, ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api import PiStreamClient
from .coordinator import AgentState, PiStreamConfigEntry, PiStreamCoordinator
from .entity import PiStreamEntity
from .services import agent_errors

CAPABILITY = "power_control"


@dataclass(frozen=True, kw_only=True)
class PowerButtonEntityDescription(ButtonEntityDescription):
    press_fn: Callable[[PiStreamClient], Awaitable[None]]


POWER_BUTTONS: tuple[PowerButtonEntityDescription, ...] = (
    PowerButtonEntityDescription(
        key="restart_agent",
        translation_key="restart_agent",
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.CONFIG,
        press_fn=lambda client: client.restart_agent(),
    ),
    PowerButtonEntityDescription(
        key="reboot",
        translation_key="reboot",
        device_class=ButtonDeviceClass.RESTART,
        entity_category=EntityCategory.CONFIG,
        press_fn=lambda client: client.reboot(),
    ),
    PowerButtonEntityDescription(
        key="shutdown",
        translation_key="shutdown",
        entity_category=EntityCategory.CONFIG,
        press_fn=lambda client: client.shutdown(),
    ),
)


def power_control_allowed(state: AgentState) -> bool:
    return state.info.capabilities.get(CAPABILITY) is True


class PiStreamPowerButton(PiStreamEntity, ButtonEntity):
    """One housekeeping action of the Pi; unavailable while the agent no longer allows it."""

    entity_description: PowerButtonEntityDescription

    def __init__(self, coordinator: PiStreamCoordinator, description: PowerButtonEntityDescription) -> None:
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        return super().available and power_control_allowed(self.coordinator.data)

    async def async_press(self) -> None:
        with agent_errors("power_action_failed", {"name": self.coordinator.config_entry.title}):
            await self.entity_description.press_fn(self.coordinator.client)


@callback
def async_add_power_buttons(
    entry: PiStreamConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """Add the buttons once the agent allows power control (now, or after it restarted allowing it)."""
    coordinator = entry.runtime_data
    added = False

    @callback
    def add() -> None:
        nonlocal added
        if not added and power_control_allowed(coordinator.data):
            added = True
            async_add_entities(PiStreamPowerButton(coordinator, description) for description in POWER_BUTTONS)

    add()
    entry.async_on_unload(coordinator.async_add_listener(add))
