"""Selects per stream: the picture settings with a list of choices (rotation, autofocus mode, exposure
mode, white balance, metering, noise reduction…) and a camera's V4L2 menus; see ``controls.py``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.select import SelectEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .controls import SOURCE_SETTING, PiStreamControlEntity, async_add_control_entities
from .coordinator import PiStreamConfigEntry

# Each change is one PUT that the agent applies (a CSI setting restarts the stream): one at a time.
PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_control_entities(entry, async_add_entities, "select", PiStreamControlSelect)


def choices(control: Mapping[str, Any]) -> dict[str, str]:
    """What Home Assistant shows → the agent's option id. A setting's options are its ids (translated
    through en.json); a V4L2 menu's are the driver's labels, its ids being bare indexes ("0", "1")."""
    listed = [option for option in control.get("options") or [] if isinstance(option, Mapping)]
    if control.get("source") == SOURCE_SETTING:
        return {str(option["id"]): str(option["id"]) for option in listed}
    shown: dict[str, str] = {}
    for option in listed:
        label = str(option.get("name") or option["id"])
        shown[label if label not in shown else f"{label} ({option['id']})"] = str(option["id"])
    return shown


class PiStreamControlSelect(PiStreamControlEntity, SelectEntity):
    """One choice of a stream's camera; the option the agent confirmed."""

    @property
    def options(self) -> list[str]:
        return list(choices(self.control))

    @property
    def current_option(self) -> str | None:
        value = self.control_value
        if value is None:
            return None
        return next((shown for shown, agent in choices(self.control).items() if agent == str(value)), None)

    async def async_select_option(self, option: str) -> None:
        await self.async_set_control(choices(self.control)[option])
