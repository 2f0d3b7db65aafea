"""Names and icons a person reads: entity names that make clean entity ids, and icons that tell apart the
sensors that used to share one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from homeassistant.util import slugify

COMPONENT = Path(__file__).resolve().parents[2] / "custom_components" / "pi_stream"
# Placeholders stand for interface names ("wlan0"); any word-like value shows the shape of the id.
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def _entity_names() -> dict[str, str]:
    """platform.translation_key → name, from en.json."""
    entities = json.loads((COMPONENT / "translations" / "en.json").read_text())["entity"]
    return {
        f"{platform}.{key}": PLACEHOLDER.sub("eth0", entry["name"])
        for platform, keys in entities.items()
        for key, entry in keys.items()
        if "name" in entry
    }


def test_names_make_clean_entity_ids() -> None:
    """No name may break a word into one- or two-letter scraps ("H.264" became ``h_264``, "Wi-Fi" became
    ``wi_fi``): every part of the id a name gives is a word of three letters or more, or a number."""
    scraps = {
        key: slugify(name)
        for key, name in _entity_names().items()
        if any(len(part) < 3 and not part.isdigit() for part in slugify(name).split("_"))
    }
    assert scraps == {}


def _default_icons(platform: str) -> dict[str, str]:
    icons: dict[str, Any] = json.loads((COMPONENT / "icons.json").read_text())["entity"][platform]
    return {key: entry["default"] for key, entry in icons.items()}


def test_sensors_and_buttons_each_have_their_own_icon() -> None:
    """CMA, DMA buffers, memory and CPU sensors used to share ``mdi:memory``/``mdi:cpu-64-bit``, and the
    restart buttons the restart counter's ``mdi:restart``: on a device page they looked alike."""
    icons = {f"sensor.{key}": icon for key, icon in _default_icons("sensor").items()}
    icons |= {f"button.{key}": icon for key, icon in _default_icons("button").items()}
    shared = {
        icon: sorted(key for key, other in icons.items() if other == icon)
        for icon in set(icons.values())
        if list(icons.values()).count(icon) > 1
    }
    assert shared == {}
