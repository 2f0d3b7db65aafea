"""Client for the pi_stream agent's API v1 (docs/api.md). Imports nothing from Home Assistant.

REST for state and commands, one WebSocket for pushed telemetry and events. Every failure is one of the
exceptions below, so callers never see a raw aiohttp error.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

SUPPORTED_API_VERSION = 1
REQUEST_TIMEOUT_S = 10.0
SNAPSHOT_TIMEOUT_S = 15.0
# The agent pings every 30 s; a socket silent for longer than this is dead.
WEBSOCKET_HEARTBEAT_S = 30.0
# The agent's answer when a stream has no motion snapshot (docs/api.md): not an error for a client.
NO_MOTION_SNAPSHOT = "no_motion_snapshot"


class PiStreamError(Exception):
    """Anything that went wrong talking to the agent."""


class PiStreamConnectionError(PiStreamError):
    """The agent cannot be reached (down, wrong address, timeout, connection lost)."""


class PiStreamAuthenticationError(PiStreamError):
    """The agent refused the token (HTTP 401)."""


class PiStreamApiVersionError(PiStreamError):
    """The agent speaks an API version this integration does not know."""

    def __init__(self, agent_version: int | None) -> None:
        super().__init__(f"agent API version {agent_version}, integration supports {SUPPORTED_API_VERSION}")
        self.agent_version = agent_version


class PiStreamResponseError(PiStreamError):
    """The agent answered with an error (``{"error": {"code", "message", "details"}}``)."""

    def __init__(
        self, status: int, code: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


@dataclass(frozen=True)
class AgentInfo:
    """``GET /api/v1/info``: who the agent is and what its board can do."""

    agent_id: str
    name: str
    hostname: str
    version: str
    api_version: int
    simulated: bool
    board: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AgentInfo:
        try:
            return cls(
                agent_id=str(data["agent_id"]),
                name=str(data.get("name") or data.get("hostname") or data["agent_id"]),
                hostname=str(data.get("hostname") or ""),
                version=str(data.get("version") or ""),
                api_version=int(data["api_version"]),
                simulated=bool(data.get("simulated", False)),
                board=dict(data.get("board") or {}),
                capabilities=dict(data.get("capabilities") or {}),
                raw=dict(data),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise PiStreamError(f"unexpected /info answer: {err}") from err


MessageHandler = Callable[[dict[str, Any]], None]


class PiStreamClient:
    """One agent. ``session`` is Home Assistant's shared aiohttp session (injected, never closed here)."""

    def __init__(
        self,
        host: str,
        port: int,
        token: str,
        session: aiohttp.ClientSession,
        *,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.host = host
        self.port = port
        self._token = token
        self._session = session
        self._timeout = request_timeout_s
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"http://{host}:{self.port}/api/v1"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    # -- REST --------------------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        raw: bool = False,
    ) -> Any:
        url = f"{self.base_url}{path}"
        try:
            async with asyncio.timeout(timeout_s or self._timeout):
                async with self._session.request(
                    method, url, headers=self._headers, json=json_body, params=params
                ) as response:
                    body = await response.read()
                    if response.status >= 400:
                        raise self._error(response.status, body)
                    if raw:
                        return body
                    try:
                        return json.loads(body)
                    except ValueError as err:
                        raise PiStreamError(f"{method} {path}: the agent answered with invalid JSON") from err
        except TimeoutError as err:
            raise PiStreamConnectionError(
                f"{method} {path}: no answer within {timeout_s or self._timeout:g} s"
            ) from err
        except aiohttp.ClientError as err:
            raise PiStreamConnectionError(f"{method} {path}: {err}") from err

    @staticmethod
    def _error(status: int, body: bytes) -> PiStreamError:
        try:
            answer = json.loads(body)
            error = answer["error"]
            if isinstance(error, str):
                # The flat form, ``{"error": "<code>", "message": "…"}`` (the housekeeping routes' refusal).
                error = {"code": error, "message": answer["message"], "details": answer.get("details")}
            code, message, details = str(error["code"]), str(error["message"]), error.get("details")
        except (ValueError, KeyError, TypeError):
            code, message, details = "error", body[:200].decode("utf-8", "replace") or f"HTTP {status}", None
        if status == 401:
            return PiStreamAuthenticationError(message)
        return PiStreamResponseError(status, code, message, details)

    async def info(self) -> AgentInfo:
        """The agent's identity; raises :class:`PiStreamApiVersionError` for an agent we cannot talk to."""
        info = AgentInfo.from_json(await self._request("GET", "/info"))
        if info.api_version != SUPPORTED_API_VERSION:
            raise PiStreamApiVersionError(info.api_version)
        return info

    async def vocabulary(self) -> dict[str, Any]:
        """``GET /vocabulary``: the words the agent can emit, with human names (static while it runs)."""
        result: dict[str, Any] = await self._request("GET", "/vocabulary")
        return result

    async def telemetry(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", "/telemetry")
        return result

    async def devices(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", "/devices")
        return result

    async def streams(self) -> dict[str, Any]:
        """``{"streams": [...], "read_credentials": {...} | None}``."""
        result: dict[str, Any] = await self._request("GET", "/streams")
        return result

    async def stream(self, stream_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", f"/streams/{stream_id}")
        return result

    async def start_stream(self, stream_id: str) -> None:
        await self._request("POST", f"/streams/{stream_id}/start")

    async def stop_stream(self, stream_id: str) -> None:
        await self._request("POST", f"/streams/{stream_id}/stop")

    async def restart_stream(self, stream_id: str) -> None:
        await self._request("POST", f"/streams/{stream_id}/restart")

    async def restart_all_streams(self) -> list[str]:
        result = await self._request("POST", "/streams/restart")
        return [str(stream_id) for stream_id in result.get("streams", [])]

    async def put_stream(self, stream_id: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace a stream; :class:`PiStreamResponseError` with code ``invalid_config`` (and
        ``details["problems"]``) when the agent refuses it."""
        result: dict[str, Any] = await self._request("PUT", f"/streams/{stream_id}", json_body=dict(config))
        return result

    async def delete_stream(self, stream_id: str) -> None:
        await self._request("DELETE", f"/streams/{stream_id}")

    async def validate_stream(self, config: Mapping[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("POST", "/streams/validate", json_body=dict(config))
        return result

    async def stream_controls(self, stream_id: str) -> dict[str, Any]:
        """``GET /streams/{id}/controls``: the picture settings and camera controls this stream's camera
        has, with their values (``{"stream_id", "controls": [...]}``)."""
        result: dict[str, Any] = await self._request("GET", f"/streams/{stream_id}/controls")
        return result

    async def set_stream_controls(self, stream_id: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT /streams/{id}/controls``: change several at once (None = back to the camera default). The
        answer is the controls document with the values the agent confirmed; a refusal is a
        :class:`PiStreamResponseError` with code ``invalid_config`` and nothing changed."""
        result: dict[str, Any] = await self._request(
            "PUT", f"/streams/{stream_id}/controls", json_body=dict(values)
        )
        return result

    async def autofocus(self, stream_id: str) -> None:
        """``POST /streams/{id}/autofocus``: one autofocus cycle (409 where the camera has none)."""
        await self._request("POST", f"/streams/{stream_id}/autofocus")

    async def snapshot(self, stream_id: str) -> bytes:
        body: bytes = await self._request(
            "GET", f"/streams/{stream_id}/snapshot", timeout_s=SNAPSHOT_TIMEOUT_S, raw=True
        )
        return body

    async def motion_snapshot(self, stream_id: str) -> bytes | None:
        """``GET /streams/{id}/motion/snapshot``: the JPEG the agent kept from the latest motion start; None
        when it has none (404 ``no_motion_snapshot``: no motion yet, or it is older than the agent keeps)."""
        try:
            body: bytes = await self._request("GET", f"/streams/{stream_id}/motion/snapshot", raw=True)
        except PiStreamResponseError as err:
            if err.status == 404 and err.code == NO_MOTION_SNAPSHOT:
                return None
            raise
        return body

    async def logs(self, stream_id: str, lines: int = 100) -> list[dict[str, Any]]:
        result = await self._request("GET", f"/streams/{stream_id}/logs", params={"lines": str(lines)})
        return list(result.get("lines", []))

    # -- housekeeping (refused with 403 ``power_control_disabled`` unless the agent's config allows it) ----

    async def restart_agent(self) -> None:
        """The agent exits and its service manager starts it again (202, then the action)."""
        await self._request("POST", "/agent/restart")

    async def reboot(self) -> None:
        await self._request("POST", "/system/reboot")

    async def shutdown(self) -> None:
        await self._request("POST", "/system/shutdown")

    # -- WebSocket ---------------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def listen(
        self, on_message: MessageHandler, on_connected: Callable[[], Awaitable[None] | None] | None = None
    ) -> None:
        """Connect the WebSocket and hand every message to ``on_message`` until it closes. Returns when the
        agent closes it normally; raises :class:`PiStreamConnectionError` when it drops,
        :class:`PiStreamAuthenticationError` when the token is refused."""
        try:
            self._ws = await self._session.ws_connect(
                f"{self.base_url}/ws",
                headers=self._headers,
                heartbeat=WEBSOCKET_HEARTBEAT_S,
            )
        except aiohttp.WSServerHandshakeError as err:
            if err.status == 401:
                raise PiStreamAuthenticationError("the agent refused the token") from err
            raise PiStreamConnectionError(f"WebSocket handshake failed: {err.status}") from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise PiStreamConnectionError(f"WebSocket connection failed: {err}") from err
        ws = self._ws
        try:
            if on_connected is not None:
                result = on_connected()
                if result is not None:
                    await result
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    try:
                        data = json.loads(message.data)
                    except ValueError:
                        continue  # one bad frame is not worth a reconnect
                    if isinstance(data, dict):
                        on_message(data)
                elif message.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break
            if ws.close_code not in (None, 1000, 1001):
                raise PiStreamConnectionError(f"the agent closed the WebSocket (code {ws.close_code})")
        except aiohttp.ClientError as err:
            raise PiStreamConnectionError(f"WebSocket connection lost: {err}") from err
        finally:
            await ws.close()
            if self._ws is ws:
                self._ws = None

    async def disconnect(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None and not ws.closed:
            await ws.close()
