"""The pi_stream integration: Raspberry Pi cameras and hardware health from the pi_stream agent.

The config flow, coordinator and platforms arrive with the integration work; this package already
declares the domain so Home Assistant and HACS recognise it.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN

__all__ = ["DOMAIN", "async_setup"]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Set up the integration (nothing to do until config entries exist)."""
    return True
