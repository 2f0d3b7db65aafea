"""Config flow for pi_stream (manual set-up; discovery, reauth, reconfigure and options come next)."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api import (
    AgentInfo,
    PiStreamApiVersionError,
    PiStreamAuthenticationError,
    PiStreamClient,
    PiStreamError,
)
from .const import CONF_TOKEN, DEFAULT_PORT, DOMAIN, LOGGER


class PiStreamConfigFlow(ConfigFlow, domain=DOMAIN):
    VERSION = 1

    async def _probe(self, host: str, port: int, token: str) -> tuple[AgentInfo | None, dict[str, str]]:
        client = PiStreamClient(host, port, token, async_get_clientsession(self.hass))
        try:
            return await client.info(), {}
        except PiStreamAuthenticationError:
            return None, {"base": "invalid_auth"}
        except PiStreamApiVersionError:
            return None, {"base": "incompatible_agent"}
        except PiStreamError:
            return None, {"base": "cannot_connect"}
        except Exception:  # noqa: BLE001 - the form must stay usable whatever went wrong
            LOGGER.exception("Unexpected error talking to the pi_stream agent")
            return None, {"base": "unknown"}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        errors: dict[str, str] = {}
        if user_input is not None:
            info, errors = await self._probe(
                user_input[CONF_HOST], user_input[CONF_PORT], user_input[CONF_TOKEN]
            )
            if info is not None:
                await self.async_set_unique_id(info.agent_id)
                self._abort_if_unique_id_configured(
                    updates={CONF_HOST: user_input[CONF_HOST], CONF_PORT: user_input[CONF_PORT]}
                )
                return self.async_create_entry(title=info.name, data=user_input)
        schema = vol.Schema(
            {
                vol.Required(CONF_HOST): str,
                vol.Required(CONF_PORT, default=DEFAULT_PORT): int,
                vol.Required(CONF_TOKEN): str,
            }
        )
        return self.async_show_form(
            step_id="user", data_schema=self.add_suggested_values_to_schema(schema, user_input), errors=errors
        )
