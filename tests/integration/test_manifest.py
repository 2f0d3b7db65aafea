"""Home Assistant recognises the integration from its manifest."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_custom_components, async_get_integration
from homeassistant.setup import async_setup_component

from custom_components.pi_stream.const import DOMAIN

COMPONENT_DIR = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN


async def test_integration_is_found_and_sets_up(hass: HomeAssistant) -> None:
    custom = await async_get_custom_components(hass)
    assert DOMAIN in custom
    integration = await async_get_integration(hass, DOMAIN)
    assert integration.manifest["iot_class"] == "local_push"
    assert integration.version is not None
    assert await async_setup_component(hass, DOMAIN, {})


def test_manifest_key_order_and_zeroconf_type_matches_agent() -> None:
    manifest = json.loads((COMPONENT_DIR / "manifest.json").read_text())
    keys = list(manifest)
    # hassfest: domain, name, then the rest sorted.
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    from pi_stream_agent.zeroconf_ad import SERVICE_TYPE

    assert manifest["zeroconf"] == [SERVICE_TYPE]


def test_display_name_is_found_by_what_people_search_for() -> None:
    """Home Assistant's "Add integration" and HACS search the display name: a user looks for "Raspberry"
    or "camera", not for the domain ``pi_stream`` (which stays, so entity ids and services keep working)."""
    manifest = json.loads((COMPONENT_DIR / "manifest.json").read_text())
    hacs = json.loads((COMPONENT_DIR.parents[1] / "hacs.json").read_text())
    name = manifest["name"]
    assert manifest["domain"] == DOMAIN == "pi_stream"
    assert "raspberry" in name.lower()
    assert "camera" in name.lower()
    assert hacs["name"] == name
    # The user-facing docs call it by that name.
    docs = (COMPONENT_DIR.parents[1] / "docs" / "home-assistant.md").read_text()
    assert docs.startswith(f"# {name}")
