"""Our own hassfest and quality-scale checks.

Hassfest ignores a custom integration's ``quality_scale.yaml`` and skips most of the checks core runs on
itself, and HACS checks only its own files; these tests hold the bar instead (HA_NOTES.md §1.3–1.7). They
walk the package, so they keep guarding whatever module is added next: a new platform without
``PARALLEL_UPDATES``, an exception or entity without its translation, a service registered per entry.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import yaml
from homeassistant import const as ha_const
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.pi_stream.controls import CAMERA_CONTROL_KEY
from custom_components.pi_stream.vocabulary import ORIENTATION_SETTINGS
from tests.integration.agent_process import AgentProcess

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "custom_components" / "pi_stream"
DOMAIN = PACKAGE.name

# The 52 rules of the 2025 Integration Quality Scale, by tier (HA_NOTES.md §1.2, tiers.json 2025).
RULES: dict[str, list[str]] = {
    "bronze": [
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow-test-coverage",
        "config-flow",
        "dependency-transparency",
        "docs-actions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ],
    "silver": [
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ],
    "gold": [
        "devices",
        "diagnostics",
        "discovery-update-info",
        "discovery",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ],
    "platinum": ["async-dependency", "inject-websession", "strict-typing"],
}
# Added to bronze on 2026-07-01; allowed (as exempt) so the file can be future-proof.
LATER_RULES = {"docs-triggers", "docs-conditions"}

# hassfest's schema for one rule (script/hassfest/quality_scale.py).
RULE_SCHEMA = vol.Any(
    vol.In(["todo", "done"]),
    vol.Schema({vol.Required("status"): vol.In(["todo", "done"]), vol.Required("comment"): str}),
    vol.Schema({vol.Required("status"): "exempt", vol.Required("comment"): str}),
)
QUALITY_SCALE_SCHEMA = vol.Schema(
    {
        vol.Required("rules"): {
            vol.In([*(r for rules in RULES.values() for r in rules), *LATER_RULES]): RULE_SCHEMA
        }
    }
)

# hacs/integration's HACS_MANIFEST_JSON_SCHEMA (keys and types; the country validator is a string list).
HACS_SCHEMA = vol.Schema(
    {
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any(str, [str]),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): str,
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): str,
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
        vol.Required("name"): str,
    },
    extra=vol.PREVENT_EXTRA,
)

PLATFORM_NAMES = {platform.value for platform in Platform}
# Modules that hold entities of a platform for its platform module (which imports them): their translation
# keys belong to that platform. The power buttons exist only where the agent allows power control, which
# the test agent does not, so their keys are known from the code, not from live entities.
ENTITY_MODULE_PLATFORMS = {"power_buttons": "button"}
TRANSLATED_EXCEPTIONS = {
    "HomeAssistantError",
    "ServiceValidationError",
    "UpdateFailed",
    "ConfigEntryNotReady",
    "ConfigEntryError",
    "ConfigEntryAuthFailed",
}
# homeassistant.components.X imports hassfest accepts without a manifest dependency (besides entity
# platforms, our own platform files and the discovery keys present in the manifest).
ALLOWED_COMPONENT_IMPORTS = {"stream", "webhook", "websocket_api", "media_source", "onboarding", "frontend"}


# -- helpers ----------------------------------------------------------------------------------------------


def modules() -> Iterator[Path]:
    yield from sorted(PACKAGE.rglob("*.py"))


@cache
def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


@cache
def en() -> dict[str, Any]:
    result: dict[str, Any] = json.loads((PACKAGE / "translations" / "en.json").read_text())
    return result


@cache
def constants() -> dict[str, str]:
    """Module-level string constants of the package (``NAME = "value"``, ``NAME: Final = "value"``), plus
    Home Assistant's own ``CONF_*``/``ATTR_*`` constants."""
    found = {
        name: value for name, value in vars(ha_const).items() if name.isupper() and isinstance(value, str)
    }
    for path in modules():
        for node in tree(path).body:
            target: ast.expr | None = None
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            elif isinstance(node, ast.AnnAssign):
                target = node.target
            value = getattr(node, "value", None)
            if (
                isinstance(target, ast.Name)
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                found[target.id] = value.value
    return found


def resolve(node: ast.expr | None) -> str | None:
    """A string literal or a module constant's value; None for anything computed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants().get(node.id)
    return None


def call_name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def functions(module: ast.Module, name: str) -> list[ast.AsyncFunctionDef | ast.FunctionDef]:
    return [
        node
        for node in ast.walk(module)
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == name
    ]


# The config and options flows, and the pure form logic they show (its schemas and error keys).
FLOW_MODULES = ("config_flow.py", "stream_form.py")


def flow_nodes() -> Iterator[ast.AST]:
    for name in FLOW_MODULES:
        yield from ast.walk(tree(PACKAGE / name))


def platform_modules() -> list[Path]:
    return [path for path in sorted(PACKAGE.glob("*.py")) if path.stem in PLATFORM_NAMES]


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (key path, string) in a translation document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from strings(value, f"{path}.{key}" if path else key)
    elif isinstance(node, str):
        yield path, node


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{([^{}]*)\}", text))


def used_translation_keys() -> dict[str, set[tuple[str, str]]]:
    """Translation keys the code uses, by section: entity (platform, key), exceptions, issues."""
    used: dict[str, set[tuple[str, str]]] = {"entity": set(), "exceptions": set(), "issues": set()}
    for path in modules():
        platform = path.stem if path.stem in PLATFORM_NAMES else ENTITY_MODULE_PLATFORMS.get(path.stem)
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.Call):
                key = resolve(keyword(node, "translation_key"))
                if key is None:
                    continue
                name = call_name(node)
                if keyword(node, "translation_domain") is not None:
                    used["exceptions"].add(("", key))
                elif name in {"async_create_issue", "create_issue"} or name.endswith("Issue"):
                    used["issues"].add(("", key))
                elif name.endswith("EntityDescription") and platform is not None:
                    used["entity"].add((platform, key))
            elif isinstance(node, ast.Assign | ast.AnnAssign) and platform is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    attr = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
                    if attr == "_attr_translation_key" and (key := resolve(node.value)) is not None:
                        used["entity"].add((platform, key))
    return used


def all_code_strings() -> set[str]:
    return {
        node.value
        for path in modules()
        for node in ast.walk(tree(path))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


# -- quality_scale.yaml -----------------------------------------------------------------------------------


@cache
def quality_scale() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text())
    return data


def status(rule: str) -> str:
    value = quality_scale()["rules"][rule]
    return str(value if isinstance(value, str) else value["status"])


def test_quality_scale_file_follows_hassfest_schema() -> None:
    QUALITY_SCALE_SCHEMA(quality_scale())


def test_quality_scale_lists_every_rule_up_to_platinum() -> None:
    listed = set(quality_scale()["rules"])
    missing = {rule for rules in RULES.values() for rule in rules} - listed
    assert not missing, f"rules missing from quality_scale.yaml: {sorted(missing)}"


def test_quality_scale_meets_platinum() -> None:
    """Platinum: every rule of every tier done or exempt (with a reason, which the schema demands)."""
    todo = [rule for rules in RULES.values() for rule in rules if status(rule) == "todo"]
    assert not todo, f"rules still todo: {todo}"


def test_done_rules_are_backed_by_the_code() -> None:
    """For the rules a file can show, ``done`` must be visible in the repository (the rest are covered by
    the behaviour tests and by the tests below)."""
    init = tree(PACKAGE / "__init__.py")
    flow = (PACKAGE / "config_flow.py").read_text()
    docs = (REPO / "docs" / "home-assistant.md").read_text()
    manifest = json.loads((PACKAGE / "manifest.json").read_text())
    checks = {
        "brands": (PACKAGE / "brand" / "icon.png").is_file,
        "common-modules": lambda: (
            (PACKAGE / "coordinator.py").is_file() and (PACKAGE / "entity.py").is_file()
        ),
        "config-flow": lambda: manifest.get("config_flow") is True and "async_step_user" in flow,
        "config-entry-unloading": lambda: bool(functions(init, "async_unload_entry")),
        "diagnostics": lambda: bool(
            functions(tree(PACKAGE / "diagnostics.py"), "async_get_config_entry_diagnostics")
        ),
        "discovery": lambda: "async_step_zeroconf" in flow and bool(manifest.get("zeroconf")),
        "discovery-update-info": lambda: "_abort_if_unique_id_configured(updates=" in flow,
        "reauthentication-flow": lambda: "async_step_reauth" in flow,
        "reconfiguration-flow": lambda: (
            "async_step_reconfigure" in flow and "_abort_if_unique_id_mismatch" in flow
        ),
        "unique-config-entry": lambda: (
            "async_set_unique_id" in flow and "_abort_if_unique_id_configured" in flow
        ),
        "integration-owner": lambda: bool(manifest.get("codeowners")),
        "repair-issues": lambda: "async_create_issue" in (PACKAGE / "repairs.py").read_text(),
        "has-entity-name": lambda: "_attr_has_entity_name = True" in (PACKAGE / "entity.py").read_text(),
        "test-before-setup": lambda: (
            "async_config_entry_first_refresh" in (PACKAGE / "__init__.py").read_text()
        ),
        "inject-websession": lambda: "ClientSession(" not in (PACKAGE / "api.py").read_text(),
        "stale-devices": lambda: bool(functions(init, "async_remove_config_entry_device")),
        "dynamic-devices": lambda: "async_add_stream_entities" in (PACKAGE / "entity.py").read_text(),
        "entity-disabled-by-default": lambda: any(
            "entity_registry_enabled_default=False" in path.read_text() for path in platform_modules()
        ),
        "entity-category": lambda: any("EntityCategory." in path.read_text() for path in platform_modules()),
        "entity-device-class": lambda: any("DeviceClass." in path.read_text() for path in platform_modules()),
        "action-setup": lambda: any(
            call_name(node) == "async_setup_services"
            for function in functions(init, "async_setup")
            for node in ast.walk(function)
            if isinstance(node, ast.Call)
        ),
        "docs-actions": lambda: "## Actions" in docs,
        "docs-installation-instructions": lambda: "## Installation" in docs,
        "docs-installation-parameters": lambda: "## Configuration" in docs,
        "docs-configuration-parameters": lambda: "## Options" in docs,
        "docs-removal-instructions": lambda: "## Removal" in docs,
        "docs-data-update": lambda: "## Data updates" in docs,
        "docs-examples": lambda: "## Examples" in docs,
        "docs-known-limitations": lambda: "## Known limitations" in docs,
        "docs-supported-devices": lambda: "## Supported devices" in docs,
        "docs-supported-functions": lambda: "## Entities" in docs,
        "docs-troubleshooting": lambda: "## Troubleshooting" in docs,
        "docs-use-cases": lambda: "## Use cases" in docs,
    }
    unbacked = [rule for rule, check in checks.items() if status(rule) == "done" and not check()]
    assert not unbacked, f"marked done but not visible in the repository: {unbacked}"


# -- manifest.json and hacs.json --------------------------------------------------------------------------


def test_manifest_keys_order_and_values() -> None:
    manifest = json.loads((PACKAGE / "manifest.json").read_text())
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"], "hassfest: domain, name, then alphabetical order"
    assert keys[2:] == sorted(keys[2:]), "hassfest: domain, name, then alphabetical order"
    required = {
        "version",
        "issue_tracker",
        "iot_class",
        "integration_type",
        "codeowners",
        "documentation",
        "config_flow",
        "zeroconf",
    }
    assert required <= set(manifest), f"missing: {sorted(required - set(manifest))}"
    assert manifest["domain"] == DOMAIN
    assert manifest["iot_class"] == "local_push"
    assert manifest["integration_type"] == "device"
    assert manifest["config_flow"] is True
    assert manifest["codeowners"]
    assert all(owner.startswith("@") for owner in manifest["codeowners"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    for key in ("documentation", "issue_tracker"):
        assert manifest[key].startswith("https://")
    assert not manifest["documentation"].startswith("https://www.home-assistant.io/integrations")
    # hassfest's manifest schema has no room for anything else.
    allowed = required | {
        "domain",
        "name",
        "after_dependencies",
        "bluetooth",
        "dependencies",
        "dhcp",
        "homekit",
        "import_executor",
        "loggers",
        "mqtt",
        "quality_scale",
        "requirements",
        "single_config_entry",
        "ssdp",
        "usb",
    }
    assert set(manifest) <= allowed, f"unknown manifest keys: {sorted(set(manifest) - allowed)}"


def test_manifest_declares_every_component_import() -> None:
    """hassfest's dependencies check: importing ``homeassistant.components.X`` needs X declared, unless X
    is an entity platform, one of our own platform files, a discovery key in the manifest, or allow-listed."""
    manifest = json.loads((PACKAGE / "manifest.json").read_text())
    declared = set(manifest.get("dependencies", [])) | set(manifest.get("after_dependencies", []))
    own = {path.stem for path in PACKAGE.glob("*.py")}
    discovery = {key for key in ("zeroconf", "dhcp", "ssdp", "usb", "bluetooth", "mqtt") if key in manifest}
    undeclared = set()
    for path in modules():
        for node in ast.walk(tree(path)):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                parts = name.split(".")
                if parts[:2] == ["homeassistant", "components"] and len(parts) > 2:
                    component = parts[2]
                    if (
                        component
                        not in PLATFORM_NAMES | own | discovery | declared | ALLOWED_COMPONENT_IMPORTS
                    ):
                        undeclared.add(f"{path.name}: {name}")
    assert not undeclared, f"imports needing a manifest dependency: {sorted(undeclared)}"


def test_hacs_json() -> None:
    hacs = json.loads((REPO / "hacs.json").read_text())
    HACS_SCHEMA(hacs)
    assert re.fullmatch(r"20\d\d\.\d{1,2}\.\d+", hacs["homeassistant"]), "the oldest supported HA release"
    assert tuple(int(part) for part in hacs["homeassistant"].split(".")) <= (2025, 4, 4)


def test_every_json_file_parses() -> None:
    for path in [*PACKAGE.rglob("*.json"), REPO / "hacs.json"]:
        json.loads(path.read_text())


def test_brand_icons() -> None:
    """``brand/icon.png`` 256×256 and ``icon@2x.png`` 512×512 (the HACS action's brands check, HA 2026.3+)."""
    for name, size in (("icon.png", 256), ("icon@2x.png", 512)):
        data = (PACKAGE / "brand" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
        assert data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert (width, height) == (size, size), f"{name} is {width}x{height}"


# -- translations -----------------------------------------------------------------------------------------


def test_translations_are_literal_text() -> None:
    """Home Assistant reads translations/en.json as is: no ``[%key:…%]`` references (resolved only in
    core's build), and hassfest's rules: no URLs, no HTML, no stray spaces, valid placeholders and keys."""
    problems = []
    for path, text in strings(en()):
        if "[%key:" in text:
            problems.append(f"{path}: reference instead of text")
        if re.search(r"https?://|www\.", text):
            problems.append(f"{path}: URL (use a description placeholder)")
        if re.search(r"<[a-zA-Z/][^>]*>", text):
            problems.append(f"{path}: HTML")
        if text != text.strip():
            problems.append(f"{path}: leading or trailing space")
        if not text:
            problems.append(f"{path}: empty")
        for name in placeholders(text):
            if not name.isidentifier():
                problems.append(f"{path}: placeholder {{{name}}}")
        for key in path.split("."):
            if not re.fullmatch(r"[a-z0-9-_]+", key):
                problems.append(f"{path}: key {key!r}")
    assert not problems, "\n".join(problems)


def test_every_flow_field_has_a_data_description() -> None:
    problems = []
    for section in ("config", "options"):
        for step_id, step in en().get(section, {}).get("step", {}).items():
            data, described = set(step.get("data", {})), set(step.get("data_description", {}))
            if missing := data - described:
                problems.append(f"{section}.step.{step_id}: no data_description for {sorted(missing)}")
            if extra := described - data:
                problems.append(f"{section}.step.{step_id}: data_description without data {sorted(extra)}")
    assert not problems, "\n".join(problems)


def test_every_schema_field_of_the_flows_is_translated() -> None:
    """Each ``vol.Required``/``vol.Optional`` key of the flows' modules is a ``data`` field of some step."""
    fields: set[str] = set()
    for section in ("config", "options"):
        for step in en().get(section, {}).get("step", {}).values():
            fields |= set(step.get("data", {}))
    missing = []
    for node in flow_nodes():
        if isinstance(node, ast.Call) and call_name(node) in {"Required", "Optional"} and node.args:
            key = resolve(node.args[0])
            if key is None and ast.unparse(node.args[0]) == "setting.id":
                # The stream editor's orientation fields: the agent's setting ids (stream_form.py).
                missing += [f"line {node.lineno}: {sid}" for sid in ORIENTATION_SETTINGS if sid not in fields]
            elif key is None:
                missing.append(f"line {node.lineno}: unresolvable schema key")
            elif key not in fields:
                missing.append(f"line {node.lineno}: {key}")
    assert not missing, f"flow fields without a translation: {missing}"


def test_flow_errors_and_aborts_are_translated() -> None:
    flow_source = (PACKAGE / "config_flow.py").read_text()
    config, options = en().get("config", {}), en().get("options", {})
    known_errors = set(config.get("error", {})) | set(options.get("error", {}))
    known_aborts = set(config.get("abort", {})) | set(options.get("abort", {}))
    errors, aborts = set(), set()
    for node in flow_nodes():
        # errors[...] = "key"
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Subscript):
            subscript = node.targets[0]
            is_errors = isinstance(subscript.value, ast.Name) and subscript.value.id == "errors"
            if is_errors and (key := resolve(node.value)) is not None:
                errors.add(key)
        # {"base": "key"} returned as errors
        if isinstance(node, ast.Dict):
            for dict_key, value in zip(node.keys, node.values, strict=True):
                if resolve(dict_key) == "base" and (key := resolve(value)) is not None:
                    errors.add(key)
        if isinstance(node, ast.Call) and (key := resolve(keyword(node, "reason"))) is not None:
            aborts.add(key)
    if "_abort_if_unique_id_configured" in flow_source:
        aborts.add("already_configured")
    if "async_step_zeroconf" in flow_source:
        aborts.add("already_in_progress")
    if "async_update_reload_and_abort" in flow_source:
        aborts |= {"reauth_successful"} if "async_step_reauth" in flow_source else set()
        aborts |= {"reconfigure_successful"} if "async_step_reconfigure" in flow_source else set()
    assert errors - known_errors == set(), "errors without a translation"
    assert aborts - known_aborts == set(), "aborts without a translation"


def test_translation_keys_used_in_code_exist() -> None:
    used = used_translation_keys()
    missing = []
    for platform, key in sorted(used["entity"]):
        if key not in en().get("entity", {}).get(platform, {}):
            missing.append(f"entity.{platform}.{key}")
    for _, key in sorted(used["exceptions"]):
        if "message" not in en().get("exceptions", {}).get(key, {}):
            missing.append(f"exceptions.{key}.message")
    for _, key in sorted(used["issues"]):
        issue = en().get("issues", {}).get(key, {})
        if not {"title", "description"} <= set(issue):
            missing.append(f"issues.{key}")
    assert not missing, f"used in the code, missing from translations/en.json: {missing}"


def test_translations_have_no_stale_keys() -> None:
    """The other way round: every exception, issue and selector key in en.json appears in the code
    (entities are checked against the live entity registry below)."""
    code = all_code_strings()
    stale = [
        f"{section}.{key}"
        for section in ("exceptions", "issues", "selector")
        for key in en().get(section, {})
        if key not in code
    ]
    assert not stale, f"translations nothing uses: {stale}"


async def test_entity_translations_and_icons_match_the_live_entities(
    hass: HomeAssistant,
    agent: AgentProcess,
    init_integration: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Translation keys are often computed (one description per throttle flag, per network interface), so
    the entities registered against the real agent are the truth: each one's key has its text (and its
    enum states and event types theirs), and nothing in en.json or icons.json is left over."""
    entries = er.async_entries_for_config_entry(entity_registry, init_integration.entry_id)
    live = {(entry.domain, entry.translation_key) for entry in entries if entry.translation_key}
    assert live, "no entity has a translation key"
    translated = en().get("entity", {})
    problems = []
    for entry in entries:
        if entry.translation_key is None:
            if entry.original_name is not None:
                problems.append(f"{entry.entity_id}: a name without a translation key")
            continue
        text = translated.get(entry.domain, {}).get(entry.translation_key)
        if text is None:
            problems.append(f"{entry.entity_id}: entity.{entry.domain}.{entry.translation_key} missing")
            continue
        for option in (entry.capabilities or {}).get("options", []):
            if option not in text.get("state", {}):
                problems.append(f"{entry.entity_id}: no state text for {option!r}")
        for event_type in (entry.capabilities or {}).get("event_types", []):
            states = text.get("state_attributes", {}).get("event_type", {}).get("state", {})
            if event_type not in states:
                problems.append(f"{entry.entity_id}: no text for event type {event_type!r}")
    known = live | used_translation_keys()["entity"]
    # The picture settings' entities exist where a stream's camera has them (controls.py): their keys are
    # the agent's setting ids on the platform of their kind; camera controls share one key for their icons.
    settings = (await hass.async_add_executor_job(agent.request, "GET", "/vocabulary"))["stream_settings"]
    known |= {(setting["kind"], setting["id"]) for setting in settings}
    known |= {(platform, CAMERA_CONTROL_KEY) for platform in ("number", "select", "switch")}
    for platform, keys in translated.items():
        problems += [
            f"entity.{platform}.{key}: no entity uses it" for key in keys if (platform, key) not in known
        ]
    path = PACKAGE / "icons.json"
    icons = json.loads(path.read_text()) if path.exists() else {}
    for platform, keys in icons.get("entity", {}).items():
        problems += [
            f"icons entity.{platform}.{key}: no entity uses it"
            for key in keys
            if (platform, key) not in known
        ]
    assert not problems, "\n".join(problems)


def test_every_raised_home_assistant_error_is_translated() -> None:
    """exception-translations: ``HomeAssistantError`` and friends carry ``translation_domain`` and
    ``translation_key``, and the placeholders they pass are the ones the message uses."""
    problems = []
    for path in modules():
        for node in ast.walk(tree(path)):
            if not (isinstance(node, ast.Call) and call_name(node) in TRANSLATED_EXCEPTIONS):
                continue
            where = f"{path.name}:{node.lineno} {call_name(node)}"
            if keyword(node, "translation_domain") is None:
                problems.append(f"{where}: no translation_domain")
                continue
            key = resolve(keyword(node, "translation_key"))
            given = keyword(node, "translation_placeholders")
            message = en().get("exceptions", {}).get(key or "", {}).get("message")
            if key is None or message is None:
                continue  # a computed key (checked where it is built), or reported above as missing
            if isinstance(given, ast.Dict) and all(k is not None for k in given.keys):
                names = {resolve(k) for k in given.keys if k is not None}
                if placeholders(message) - names:
                    problems.append(f"{where}: {key} needs {sorted(placeholders(message) - names)}")
            elif given is None and placeholders(message):
                problems.append(f"{where}: {key} needs {sorted(placeholders(message))}")
    assert not problems, "\n".join(problems)


def test_services_are_translated() -> None:
    path = PACKAGE / "services.yaml"
    if not path.exists():
        pytest.skip("no services")
    services = yaml.safe_load(path.read_text()) or {}
    translated = en().get("services", {})
    problems = []
    for name, service in services.items():
        entry = translated.get(name, {})
        if not {"name", "description"} <= set(entry):
            problems.append(f"services.{name}: name and description")
        for field in (service or {}).get("fields", {}) or {}:
            if not {"name", "description"} <= set(entry.get("fields", {}).get(field, {})):
                problems.append(f"services.{name}.fields.{field}: name and description")
    assert set(translated) <= set(services), "translated services that do not exist"
    assert not problems, "\n".join(problems)


def test_services_yaml_exists_when_services_are_registered() -> None:
    registers = any(
        isinstance(node, ast.Call)
        and call_name(node) in {"async_register", "register", "async_register_entity_service"}
        for path in modules()
        for node in ast.walk(tree(path))
    )
    if registers:
        assert (PACKAGE / "services.yaml").is_file()


# -- icons.json -------------------------------------------------------------------------------------------


def test_icons_are_mdi_and_match_the_services() -> None:
    path = PACKAGE / "icons.json"
    icons = json.loads(path.read_text()) if path.exists() else {}
    problems = []
    for platform, keys in icons.get("entity", {}).items():
        for key, icon in keys.items():
            for where, value in strings(icon):
                if not value.startswith("mdi:"):
                    problems.append(f"entity.{platform}.{key}.{where}: {value}")
    services_path = PACKAGE / "services.yaml"
    services = set(yaml.safe_load(services_path.read_text()) or {}) if services_path.exists() else set()
    for name, icon in icons.get("services", {}).items():
        if name not in services:
            problems.append(f"services.{name}: no such service")
        if not str(icon.get("service", "")).startswith("mdi:"):
            problems.append(f"services.{name}: {icon}")
    for name in services - set(icons.get("services", {})):
        problems.append(f"services.{name}: no icon")
    assert not problems, "\n".join(problems)


def test_icons_come_from_icons_json() -> None:
    """icon-translations: no ``_attr_icon`` or ``icon=`` in the code."""
    found = []
    for path in modules():
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.Call) and keyword(node, "icon") is not None:
                found.append(f"{path.name}:{node.lineno}")
            if (
                isinstance(node, ast.Attribute | ast.Name)
                and getattr(node, "attr", getattr(node, "id", "")) == "_attr_icon"
            ):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, f"icons set in code: {found}"


# -- code structure (hassfest's core-only AST validators, mirrored) ---------------------------------------


def test_every_platform_module_sets_parallel_updates() -> None:
    missing = [
        path.name
        for path in platform_modules()
        if not any(
            isinstance(node, ast.Assign | ast.AnnAssign)
            and any(
                isinstance(target, ast.Name) and target.id == "PARALLEL_UPDATES"
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            for node in tree(path).body
        )
    ]
    assert platform_modules(), "no platform modules found"
    assert not missing, f"PARALLEL_UPDATES missing in {missing}"


def test_platform_modules_and_platforms_list_agree() -> None:
    listed = set()
    for node in ast.walk(tree(PACKAGE / "__init__.py")):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "Platform"
        ):
            listed.add(Platform[node.attr].value)
    entity_platforms = {path.stem for path in platform_modules()} - {"diagnostics", "repairs"}
    assert listed == entity_platforms


def test_services_registered_only_in_async_setup() -> None:
    """action-setup: no ``hass.services.async_register`` (nor our ``async_setup_services``) inside any
    ``async_setup_entry``, and services are set up from ``async_setup``."""
    offenders = []
    for path in modules():
        for function in functions(tree(path), "async_setup_entry"):
            for node in ast.walk(function):
                if isinstance(node, ast.Call):
                    func = node.func
                    registers = (
                        isinstance(func, ast.Attribute)
                        and func.attr in {"async_register", "async_register_admin_service"}
                        and isinstance(func.value, ast.Attribute)
                        and func.value.attr == "services"
                    )
                    if registers or call_name(node) == "async_setup_services":
                        offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"services registered per entry: {offenders}"


def test_runtime_data_is_set_in_async_setup_entry() -> None:
    [setup_entry] = functions(tree(PACKAGE / "__init__.py"), "async_setup_entry")
    assigned = any(
        isinstance(node, ast.Assign)
        and any(
            isinstance(target, ast.Attribute) and target.attr == "runtime_data" for target in node.targets
        )
        for node in ast.walk(setup_entry)
    )
    assert assigned, "entry.runtime_data = … missing from async_setup_entry"
    # … and nothing keeps per-entry state in hass.data.
    for path in modules():
        assert "hass.data[DOMAIN]" not in path.read_text(), path.name


def test_setup_entry_functions_take_the_typed_config_entry() -> None:
    """strict-typing: every ``async_setup_entry``/``async_unload_entry``/diagnostics function is annotated
    with ``PiStreamConfigEntry``."""
    untyped = []
    for path in modules():
        for name in ("async_setup_entry", "async_unload_entry", "async_get_config_entry_diagnostics"):
            for function in functions(tree(path), name):
                annotations = [ast.unparse(arg.annotation) for arg in function.args.args if arg.annotation]
                if "PiStreamConfigEntry" not in annotations:
                    untyped.append(f"{path.name}:{function.name}")
    assert not untyped, untyped


def test_no_blocking_calls_in_the_integration() -> None:
    """Fully async: no ``time.sleep``, ``requests`` or ``open()`` inside the package."""
    found = []
    for path in modules():
        for node in ast.walk(tree(path)):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                )
                if any(name.split(".")[0] in {"requests", "urllib3"} for name in names):
                    found.append(f"{path.name}:{node.lineno} imports a blocking HTTP library")
            if isinstance(node, ast.Call):
                text = ast.unparse(node.func)
                if text in {"time.sleep", "open", "subprocess.run", "subprocess.Popen"}:
                    found.append(f"{path.name}:{node.lineno} {text}()")
    assert not found, found


# -- platinum: strict typing, and the code style the repository keeps -------------------------------------


def run_tool(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed in this environment")
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_strict_typing() -> None:
    """strict-typing: ``mypy --strict`` over the package."""
    result = run_tool("mypy", "--strict", "--python-version", "3.13", str(PACKAGE.relative_to(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_clean() -> None:
    package = str(PACKAGE.relative_to(REPO))
    lint = run_tool("ruff", "check", package)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    style = run_tool("ruff", "format", "--check", package)
    assert style.returncode == 0, style.stdout + style.stderr
