"""Numbers per stream: the picture settings set as a number (brightness, contrast, saturation,
sharpness, exposure compensation, lens position, shutter time, gain…) and a camera's V4L2 integer
controls, each with the range and step the stream's camera reports; see ``controls.py``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.components.number import NumberEntity, NumberMode
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .controls import PiStreamControlEntity, async_add_control_entities
from .coordinator import PiStreamConfigEntry

# Each change is one PUT that the agent applies (a CSI setting restarts the stream): one at a time.
PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: PiStreamConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    async_add_control_entities(entry, async_add_entities, "number", PiStreamControlNumber)


def _number(value: Any) -> int | float | None:
    """A number of the agent's as it sent it: a whole-numbered control (V4L2) shows 10, not 10.0."""
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def agent_number(control: Mapping[str, Any], value: float) -> int | float:
    """The value as the agent takes it: a whole number where the control counts in whole steps (V4L2
    integers, microseconds), else the float."""
    step = control.get("step")
    if isinstance(step, int) and not isinstance(step, bool) and isinstance(control.get("min"), int):
        return round(value)
    return value


class PiStreamControlNumber(PiStreamControlEntity, NumberEntity):
    """A number of a stream's camera, within the range its camera reports; the value the agent confirmed."""

    _attr_mode = NumberMode.AUTO

    @property
    def native_value(self) -> float | None:
        return _number(self.control_value)

    @property
    def native_min_value(self) -> float:
        minimum = _number(self.control.get("min"))
        return 0.0 if minimum is None else minimum

    @property
    def native_max_value(self) -> float:
        maximum = _number(self.control.get("max"))
        return 100.0 if maximum is None else maximum

    @property
    def native_step(self) -> float | None:
        return _number(self.control.get("step"))

    @property
    def native_unit_of_measurement(self) -> str | None:
        unit = self.control.get("unit")
        return None if unit is None else str(unit)

    async def async_set_native_value(self, value: float) -> None:
        await self.async_set_control(agent_number(self.control, value))
