"""Brings a freshly started Home Assistant to where a person would have it after setting up pi_stream by hand,
through Home Assistant's own HTTP and WebSocket APIs only (nothing is written into its storage files):

1. onboarding: ``POST /api/onboarding/users`` (the demo user), the auth code exchanged for a token at
   ``/auth/token``, then ``/api/onboarding/core_config``, ``/analytics`` and ``/integration``; on a later run
   (onboarding done) the same user logs in through ``/auth/login_flow``;
2. the integrations that onboarding's core-config step adds by itself are removed again (Radio Browser, whose
   set-up needs the Internet and fails offline, Google Translate TTS, the shopping list), so the demo shows
   pi_stream; Met weather is not added at all (the home location is onboarding's default, which it skips);
3. the pi_stream entry is added through the real config flow (``POST /api/config/config_entries/flow`` with
   handler ``pi_stream``, then host, port and token) unless an entry for this agent is loaded already;
4. the Overview dashboard is written (``lovelace/config/save``) from what the integration created: a live
   camera card per camera, the Pi's entities, each stream's entities, and a history graph of the Pi's
   percentages and temperatures — built from the entity and device registries, so it shows whatever
   platforms the integration has.

Run by scripts/demo with the Home Assistant venv's python (it uses aiohttp). Exits non-zero, saying why, when
something does not work.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import aiohttp

DASHBOARD_TITLE = "pi_stream demo"
ONBOARDING_STEPS = ("user", "core_config", "analytics", "integration")
ONBOARDING_EXTRAS = ("radio_browser", "google_translate", "shopping_list")


class ProvisionError(Exception):
    pass


class HomeAssistant:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url.rstrip("/")
        self.client_id = self.url + "/"
        self.token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def request(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,)) -> Any:
        async with self.session.request(method, self.url + path, json=body, headers=self.headers) as response:
            text = await response.text()
            if response.status not in ok:
                raise ProvisionError(f"{method} {path} answered {response.status}: {text[:500]}")
            return await response.json(content_type=None) if text else None

    async def wait_until_up(self, timeout_s: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                async with self.session.get(self.url + "/api/onboarding") as response:
                    if response.status == 404:  # onboarding is over: its views are no longer registered
                        return [{"step": step, "done": True} for step in ONBOARDING_STEPS]
                    if response.status == 200:
                        steps: list[dict[str, Any]] = await response.json()
                        return steps
                    raise ProvisionError(f"GET /api/onboarding answered {response.status}")
            except (aiohttp.ClientError, ProvisionError) as err:
                if time.monotonic() > deadline:
                    raise ProvisionError(
                        f"Home Assistant did not answer at {self.url} within {timeout_s:.0f} s"
                    ) from err
                await asyncio.sleep(1)

    async def exchange(self, code: str) -> None:
        form = {"grant_type": "authorization_code", "code": code, "client_id": self.client_id}
        async with self.session.post(self.url + "/auth/token", data=form) as response:
            if response.status != 200:
                raise ProvisionError(f"token exchange failed: {response.status} {await response.text()}")
            self.token = (await response.json())["access_token"]

    async def log_in(self, username: str, password: str) -> None:
        flow = await self.request(
            "POST",
            "/auth/login_flow",
            {"client_id": self.client_id, "handler": ["homeassistant", None], "redirect_uri": self.client_id},
        )
        result = await self.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"username": username, "password": password, "client_id": self.client_id},
        )
        if result.get("type") != "create_entry":
            raise ProvisionError(
                f"cannot log in as {username!r} ({result.get('errors')}); "
                "the demo's Home Assistant has another user: start over with scripts/demo --reset"
            )
        await self.exchange(result["result"])

    async def wait_running(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while (await self.request("GET", "/api/config")).get("state") != "RUNNING":
            if time.monotonic() > deadline:
                raise ProvisionError("Home Assistant did not finish starting")
            await asyncio.sleep(1)

    async def entries(self, domain: str | None = None) -> list[dict[str, Any]]:
        path = "/api/config/config_entries/entry" + (f"?domain={domain}" if domain else "")
        entries: list[dict[str, Any]] = await self.request("GET", path)
        return entries

    async def websocket(self, commands: list[dict[str, Any]]) -> list[Any]:
        """Run WebSocket commands in order; the ``result`` of each."""
        results = []
        async with self.session.ws_connect(self.url + "/api/websocket") as ws:
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            if (await ws.receive_json()).get("type") != "auth_ok":
                raise ProvisionError("WebSocket authentication failed")
            for number, command in enumerate(commands, start=1):
                await ws.send_json({"id": number, **command})
                while True:
                    message = await ws.receive_json()
                    if message.get("id") == number and message.get("type") == "result":
                        break
                if not message.get("success"):
                    raise ProvisionError(f"{command['type']} failed: {message.get('error')}")
                results.append(message.get("result"))
        return results


async def onboard(ha: HomeAssistant, steps: list[dict[str, Any]], args: argparse.Namespace) -> bool:
    """Onboarding through its REST API; True if it was done now."""
    done = {step["step"] for step in steps if step["done"]}
    if "user" in done:
        await ha.log_in(args.username, args.password)
    else:
        created = await ha.request(
            "POST",
            "/api/onboarding/users",
            {
                "client_id": ha.client_id,
                "name": args.name,
                "username": args.username,
                "password": args.password,
                "language": "en",
            },
        )
        await ha.exchange(created["auth_code"])
    if "core_config" not in done:
        await ha.request("POST", "/api/onboarding/core_config", {})
    if "analytics" not in done:
        await ha.request("POST", "/api/onboarding/analytics", {})
    if "integration" not in done:
        await ha.request(
            "POST", "/api/onboarding/integration", {"client_id": ha.client_id, "redirect_uri": ha.client_id}
        )
    return "core_config" not in done


async def remove_onboarding_extras(ha: HomeAssistant, wait_s: float) -> None:
    """Onboarding's core-config step starts its flows as background tasks: wait for the entries, then
    remove them."""
    deadline = time.monotonic() + wait_s
    removed: set[str] = set()
    while time.monotonic() < deadline and len(removed) < len(ONBOARDING_EXTRAS):
        for entry in await ha.entries():
            if entry["domain"] in ONBOARDING_EXTRAS and entry["entry_id"] not in removed:
                await ha.request("DELETE", f"/api/config/config_entries/entry/{entry['entry_id']}")
                removed.add(entry["entry_id"])
        await asyncio.sleep(0.5)


async def add_pi_stream(ha: HomeAssistant, args: argparse.Namespace) -> dict[str, Any]:
    """The pi_stream entry for this agent, added through the config flow when there is none (or a broken
    one)."""
    for existing in await ha.entries("pi_stream"):
        if existing["state"] == "loaded":
            print(f"    pi_stream entry {existing['title']!r} already set up")
            return existing
        print(f"    removing the pi_stream entry {existing['title']!r} ({existing['state']}) to add it again")
        await ha.request("DELETE", f"/api/config/config_entries/entry/{existing['entry_id']}")
    flow = await ha.request(
        "POST", "/api/config/config_entries/flow", {"handler": "pi_stream", "show_advanced_options": False}
    )
    user_input = {"host": args.agent_host, "port": args.agent_port, "token": args.agent_token}
    while flow.get("type") == "form":
        fields = {field["name"] for field in flow.get("data_schema", [])}
        if flow.get("errors"):
            raise ProvisionError(f"the pi_stream config flow refused the agent: {flow['errors']}")
        if not fields <= set(user_input):
            raise ProvisionError(
                f"the pi_stream config flow asks for {sorted(fields)} in step {flow['step_id']}"
            )
        flow = await ha.request(
            "POST", f"/api/config/config_entries/flow/{flow['flow_id']}", {k: user_input[k] for k in fields}
        )
    if flow.get("type") != "create_entry":
        raise ProvisionError(f"the pi_stream config flow ended with {flow}")
    entry: dict[str, Any] = flow["result"]
    print(f"    pi_stream entry {entry['title']!r} added through the config flow")
    deadline = time.monotonic() + 60
    while True:
        states = {e["entry_id"]: e["state"] for e in await ha.entries("pi_stream")}
        if states.get(entry["entry_id"]) == "loaded":
            return entry
        if time.monotonic() > deadline:
            raise ProvisionError(f"the pi_stream entry did not load: {states}")
        await asyncio.sleep(0.5)


def build_dashboard(
    entry_id: str, devices: list[dict[str, Any]], entities: list[dict[str, Any]], states: list[dict[str, Any]]
) -> dict[str, Any]:
    attributes = {state["entity_id"]: state["attributes"] for state in states}
    ours = [
        e
        for e in entities
        if e.get("config_entry_id") == entry_id and not e.get("disabled_by") and not e.get("hidden_by")
    ]
    ours.sort(key=lambda e: (e.get("entity_category") is not None, e["entity_id"]))
    by_device: dict[str | None, list[str]] = {}
    for entity in ours:
        by_device.setdefault(entity.get("device_id"), []).append(entity["entity_id"])
    our_devices = [d for d in devices if entry_id in d.get("config_entries", [])]
    pis = [d for d in our_devices if not d.get("via_device_id")]
    streams = [d for d in our_devices if d.get("via_device_id")]

    def name(device: dict[str, Any]) -> str:
        return str(device.get("name_by_user") or device.get("name") or "")

    def rows(entity_ids: list[str], device_name: str) -> list[dict[str, Any] | str]:
        """Entities-card rows named without the device's name in front (the card's title says it)."""
        out: list[dict[str, Any] | str] = []
        for entity_id in entity_ids:
            friendly = str(attributes.get(entity_id, {}).get("friendly_name") or "")
            if device_name and friendly.startswith(device_name + " "):
                out.append({"entity": entity_id, "name": friendly[len(device_name) + 1 :]})
            else:
                out.append(entity_id)
        return out

    def section(title: str, cards: list[dict[str, Any]]) -> dict[str, Any]:
        return {"type": "grid", "cards": [{"type": "heading", "heading": title}, *cards]}

    # A "sections" view: cards keep their place while the page lays out. (In the masonry view the frontend
    # moves cards between columns as it measures them, and an HLS player moved at the wrong moment gives up
    # and falls back to still pictures.)
    sections: list[dict[str, Any]] = []
    cameras = [e for e in (x["entity_id"] for x in ours) if e.startswith("camera.")]
    if cameras:
        sections.append(
            section(
                "Cameras",
                [{"type": "picture-entity", "entity": camera, "camera_view": "live", "show_state": False,
                  "grid_options": {"columns": 12}} for camera in cameras],
            )
        )  # fmt: skip
    for pi in pis:
        others = [e for e in by_device.get(pi["id"], []) if not e.startswith("camera.")]
        cards: list[dict[str, Any]] = []
        graphed = [
            e
            for e in others
            if e.startswith("sensor.") and attributes.get(e, {}).get("unit_of_measurement") in ("%", "°C")
        ][:6]
        if graphed:
            cards.append({"type": "history-graph", "title": "Last 15 minutes", "hours_to_show": 0.25,
                          "entities": graphed,
                          "grid_options": {"columns": 12}})  # fmt: skip
        if others:
            cards.append({"type": "entities", "state_color": True, "entities": rows(others, name(pi)),
                          "grid_options": {"columns": 12}})  # fmt: skip
        if cards:
            sections.append(section(name(pi), cards))
    for stream in sorted(streams, key=name):
        others = [e for e in by_device.get(stream["id"], []) if not e.startswith("camera.")]
        if others:
            sections.append(
                section(name(stream), [{"type": "entities", "state_color": True,
                                        "entities": rows(others, name(stream)),
                                        "grid_options": {"columns": 12}}])
            )  # fmt: skip
    loose = [e for e in by_device.get(None, []) if not e.startswith("camera.")]
    if loose:
        sections.append(section("pi_stream", [{"type": "entities", "entities": loose}]))
    if not sections:
        sections.append(
            section(
                "pi_stream", [{"type": "markdown", "content": "The pi_stream entry has no entities yet."}]
            )
        )
    view = {"type": "sections", "title": "Raspberry Pi", "path": "pi", "max_columns": 3, "sections": sections}
    return {"title": DASHBOARD_TITLE, "views": [view]}


async def write_dashboard(ha: HomeAssistant, entry_id: str) -> dict[str, int]:
    """Write the Overview dashboard unless a person replaced the demo's own; count entities by domain."""
    await asyncio.sleep(2)  # stream entities are added as the first data arrives
    devices, entities, states = await ha.websocket(
        [
            {"type": "config/device_registry/list"},
            {"type": "config/entity_registry/list"},
            {"type": "get_states"},
        ]
    )
    try:
        (current,) = await ha.websocket([{"type": "lovelace/config", "force": True}])
    except ProvisionError:
        current = None  # no stored dashboard yet: the generated one is shown
    counts: dict[str, int] = {}
    for entity in entities:
        if entity.get("config_entry_id") == entry_id:
            domain = entity["entity_id"].split(".", 1)[0]
            counts[domain] = counts.get(domain, 0) + 1
    if current is not None and current.get("title") != DASHBOARD_TITLE:
        print("    the Overview dashboard was changed by hand: left as it is")
        return counts
    config = build_dashboard(entry_id, devices, entities, states)
    await ha.websocket([{"type": "lovelace/config/save", "config": config}])
    return counts


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", default="Demo")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--agent-host", required=True)
    parser.add_argument("--agent-port", type=int, required=True)
    parser.add_argument("--agent-token", required=True)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        ha = HomeAssistant(session, args.url)
        try:
            steps = await ha.wait_until_up(args.timeout)
            onboarded_now = await onboard(ha, steps, args)
            print("    onboarding done" + (" (user created)" if onboarded_now else ""))
            await ha.wait_running(args.timeout)
            if onboarded_now:
                await remove_onboarding_extras(ha, wait_s=30)
            entry = await add_pi_stream(ha, args)
            counts = await write_dashboard(ha, entry["entry_id"])
        except ProvisionError as err:
            print(f"demo: {err}", file=sys.stderr)
            return 1
    summary = ", ".join(f"{n} {domain}" for domain, n in sorted(counts.items())) or "no entities yet"
    print(f"    pi_stream entities: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
