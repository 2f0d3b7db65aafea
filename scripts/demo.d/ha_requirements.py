"""Installs, into the running interpreter's venv, the Python requirements of the Home Assistant integrations
the demo loads — before Home Assistant starts, so that its first start does not stop to install them.

Home Assistant would install them itself at start-up (it does so for any integration whose requirements are
missing); doing it here is faster (one uv call) and says what it is doing. The set of integrations is
Home Assistant's always-loaded ones, the top-level keys of the demo's configuration.yaml, the platforms
pi_stream uses, and the four integrations that onboarding's core-config step sets up by itself — each with
its dependencies and after-dependencies, from their manifests. Versions are pinned by the manifests and by
Home Assistant's own package_constraints.txt.

Usage: .venv/bin/python scripts/demo.d/ha_requirements.py CONFIG_DIR/configuration.yaml
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import homeassistant
from homeassistant import bootstrap

COMPONENTS = Path(homeassistant.__file__).parent / "components"
CONSTRAINTS = Path(homeassistant.__file__).parent / "package_constraints.txt"
REPO = Path(__file__).resolve().parents[2]
# Entity platforms and helpers pi_stream may use (a missing one costs nothing).
PI_STREAM_PLATFORMS = (
    "camera",
    "sensor",
    "binary_sensor",
    "button",
    "switch",
    "event",
    "diagnostics",
    "repairs",
)
# POST /api/onboarding/core_config starts config flows for these (components/onboarding/views.py).
ONBOARDING_FLOWS = ("google_translate", "met", "radio_browser", "shopping_list")


def top_level_keys(configuration: Path) -> set[str]:
    """The integration keys of the configuration.yaml scripts/demo writes (``key:`` lines at column 0)."""
    keys = set()
    for line in configuration.read_text().splitlines():
        if line and not line[0].isspace() and not line.startswith("#") and ":" in line:
            keys.add(line.split(":", 1)[0].strip())
    return keys


def requirements(domains: set[str]) -> list[str]:
    seen: set[str] = set()
    found: set[str] = set()

    def walk(domain: str) -> None:
        if domain in seen:
            return
        seen.add(domain)
        manifest_path = COMPONENTS / domain / "manifest.json"
        if not manifest_path.is_file():
            manifest_path = REPO / "custom_components" / domain / "manifest.json"
            if not manifest_path.is_file():
                return
        manifest = json.loads(manifest_path.read_text())
        found.update(manifest.get("requirements", []))
        for dependency in (*manifest.get("dependencies", []), *manifest.get("after_dependencies", [])):
            walk(dependency)

    for domain in sorted(domains):
        walk(domain)
    return sorted(found)


def main() -> int:
    configuration = Path(sys.argv[1])
    domains = (
        top_level_keys(configuration)
        | bootstrap.CORE_INTEGRATIONS
        | bootstrap.LOGGING_AND_HTTP_DEPS_INTEGRATIONS
        | bootstrap.FRONTEND_INTEGRATIONS
        | bootstrap.DEFAULT_INTEGRATIONS
        | {"recorder", "pi_stream", *PI_STREAM_PLATFORMS, *ONBOARDING_FLOWS}
    ) - {"homeassistant"}
    wanted = requirements(domains)
    stamp = Path(sys.prefix) / ".pi_stream_demo_requirements.sha"
    digest = hashlib.sha256("\n".join(wanted).encode()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return 0
    print(f"==> installing Home Assistant's runtime requirements for the demo ({len(wanted)} packages)")
    command = [sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", sys.executable,
               "--constraint", str(CONSTRAINTS), *wanted]  # fmt: skip
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        return result.returncode
    stamp.write_text(digest + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
