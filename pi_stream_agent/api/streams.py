"""API v1 routes for streams: state, commands, configuration, picture controls, snapshots and logs
(docs/api.md)."""

from __future__ import annotations

import errno
from collections.abc import Awaitable
from typing import TypeVar

from aiohttp import web

from pi_stream_agent.api.errors import ApiError, read_json_object
from pi_stream_agent.streams.manager import NoAutofocusError, StreamManager, UnknownStreamError
from pi_stream_agent.streams.motion_service import NoMotionSnapshotError
from pi_stream_agent.streams.problems import StreamConfigError
from pi_stream_agent.streams.snapshot import SnapshotError
from pi_stream_agent.streams.store import StreamStoreError

STREAMS_KEY = "pi_stream_streams"
PREFIX = "/api/v1/streams"
DEFAULT_LOG_LINES = 100
MAX_LOG_LINES = 1000


def _manager(request: web.Request) -> StreamManager:
    manager: StreamManager = request.app[STREAMS_KEY]
    return manager


_T = TypeVar("_T")
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _reader_host(request: web.Request) -> str:
    # The RTSP server runs beside the agent: a client reaches it at the address it used to reach us. A Host
    # header that is no host at all (``Host: [``) falls back to the address the connection arrived on.
    try:
        host = request.url.host
    except ValueError:
        host = None
    if host:
        return host
    sockname = request.transport.get_extra_info("sockname") if request.transport is not None else None
    return str(sockname[0]) if isinstance(sockname, tuple) and sockname else "127.0.0.1"


async def _storing(change: Awaitable[_T]) -> _T:
    """Run a change that writes streams.yaml; a store that cannot be read or written becomes a plain error
    (the stored configuration is untouched either way: writes are atomic)."""
    try:
        return await change
    except StreamStoreError as exc:
        raise ApiError(
            503,
            "stored_config_unusable",
            "The agent's stored stream configuration cannot be read, so nothing was changed. Fix or "
            "restore it on the Pi (the agent's log and 'pi-stream-agent check-config' say what is wrong), "
            "then try again.",
            problems=[problem.to_json() for problem in exc.problems],
        ) from None
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise ApiError(
                507,
                "insufficient_storage",
                "The Pi's disk is full, so the change was not saved; the stored configuration is unchanged. "
                "Free some space on the Pi and try again.",
            ) from None
        raise ApiError(
            503,
            "storage_error",
            f"The change could not be saved ({exc.strerror or exc}); the stored configuration is unchanged. "
            "Check the agent's state directory on the Pi and try again.",
        ) from None


def _stream_id(request: web.Request) -> str:
    stream_id = request.match_info["stream_id"]
    if stream_id not in _manager(request).ids():
        raise ApiError(404, "stream_not_found", f"no stream {stream_id!r}; GET {PREFIX} lists them")
    return stream_id


async def list_streams(request: web.Request) -> web.Response:
    manager = _manager(request)
    return web.json_response(
        {
            "streams": manager.statuses(reader_host=_reader_host(request)),
            "read_credentials": manager.read_credentials(),
        }
    )


async def get_stream(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    return web.json_response(_manager(request).status(stream_id, reader_host=_reader_host(request)))


async def command(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    manager = _manager(request)
    action = request.match_info["action"]
    if action == "start":
        manager.start_stream(stream_id)
    elif action == "stop":
        manager.stop_stream(stream_id)
    else:
        manager.restart_stream(stream_id)
    return web.json_response({"stream_id": stream_id, "action": action, "accepted": True}, status=202)


async def restart_all(request: web.Request) -> web.Response:
    restarted = _manager(request).restart_all()
    return web.json_response({"action": "restart", "streams": restarted, "accepted": True}, status=202)


async def put_stream(request: web.Request) -> web.Response:
    stream_id = request.match_info["stream_id"]
    body = await read_json_object(request, "the stream's configuration")
    if body.setdefault("id", stream_id) != stream_id:
        raise ApiError(
            400,
            "id_mismatch",
            f"the body's id {body['id']!r} differs from the URL's {stream_id!r}; they must match",
        )
    manager = _manager(request)
    existed = stream_id in manager.ids()
    try:
        _, warnings = await _storing(manager.upsert(body))
    except StreamConfigError as exc:
        raise ApiError(
            422,
            "invalid_config",
            str(exc),
            problems=[problem.to_json() for problem in exc.problems],
            warnings=[problem.to_json() for problem in exc.warnings],
        ) from None
    status = manager.status(stream_id, reader_host=_reader_host(request))
    return web.json_response(
        {"stream": status, "warnings": [problem.to_json() for problem in warnings]},
        status=200 if existed else 201,
    )


async def delete_stream(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    try:
        await _storing(_manager(request).remove(stream_id))
    except UnknownStreamError:
        raise ApiError(404, "stream_not_found", f"no stream {stream_id!r}") from None
    return web.json_response({"stream_id": stream_id, "removed": True})


async def validate_stream(request: web.Request) -> web.Response:
    problems = _manager(request).validate(await read_json_object(request, "the stream's configuration"))
    return web.json_response(
        {
            "valid": not any(problem.is_error for problem in problems),
            "problems": [problem.to_json() for problem in problems],
        }
    )


_SNAPSHOT_STATUS = {"timeout": 504, "no_substream": 404}  # every other reason: 503


async def snapshot(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    raw = request.query.get("substream", "0")
    if raw not in ("0", "1"):
        raise ApiError(400, "invalid_parameter", f"substream must be 1 (the substream) or 0, got {raw!r}")
    try:
        picture = await _manager(request).snapshot(stream_id, substream=raw == "1")
    except SnapshotError as exc:
        status = _SNAPSHOT_STATUS.get(exc.code, 503)
        raise ApiError(status, "snapshot_unavailable", exc.message, reason=exc.code) from None
    return web.Response(
        body=picture.jpeg,
        content_type="image/jpeg",
        headers={
            "Cache-Control": "no-store",
            "X-Snapshot-Taken-At": f"{picture.taken_at:.3f}",
            "X-Snapshot-Size": f"{picture.width}x{picture.height}",
            # How old the picture is as it leaves: from the key frame's time where the tap knows it.
            "X-Picture-Age-Ms": str(round(picture.age_s() * 1000)),
            "X-Snapshot-Source": "keyframe" if picture.from_tap else "rtsp",
        },
    )


async def motion_snapshot(request: web.Request) -> web.Response:
    """The picture taken at the stream's latest motion start (kept 10 minutes); 404 when there is none."""
    stream_id = _stream_id(request)
    try:
        picture = await _manager(request).motion_snapshot(stream_id)
    except NoMotionSnapshotError as exc:
        raise ApiError(404, "no_motion_snapshot", str(exc)) from None
    return web.Response(
        body=picture.jpeg,
        content_type="image/jpeg",
        headers={
            "Cache-Control": "no-store",
            "X-Motion-Started-At": f"{picture.started_at:.3f}",
            "X-Snapshot-Taken-At": f"{picture.taken_at:.3f}",
            "X-Snapshot-Size": f"{picture.width}x{picture.height}",
        },
    )


async def logs(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    raw = request.query.get("lines", str(DEFAULT_LOG_LINES))
    try:
        lines = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"lines must be a whole number, got {raw!r}") from None
    if not 1 <= lines <= MAX_LOG_LINES:
        raise ApiError(400, "invalid_parameter", f"lines must be between 1 and {MAX_LOG_LINES}, got {lines}")
    return web.json_response({"stream_id": stream_id, "lines": _manager(request).logs(stream_id, lines)})


async def get_controls(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    return web.json_response(_manager(request).controls(stream_id))


async def put_controls(request: web.Request) -> web.Response:
    """Several controls in one call, all checked against the camera first: any problem → 422 and nothing
    applied; else stored, applied, and the controls document with the confirmed values."""
    stream_id = _stream_id(request)
    body = await read_json_object(request, 'control ids to values, e.g. {"rotation": "180"}')
    try:
        document = await _storing(_manager(request).set_controls(stream_id, body))
    except StreamConfigError as exc:
        raise ApiError(
            422,
            "invalid_config",
            str(exc),
            problems=[problem.to_json() for problem in exc.problems],
            warnings=[problem.to_json() for problem in exc.warnings],
        ) from None
    return web.json_response(document)


async def autofocus(request: web.Request) -> web.Response:
    stream_id = _stream_id(request)
    try:
        await _manager(request).autofocus(stream_id)
    except NoAutofocusError as exc:
        raise ApiError(409, "no_autofocus", str(exc)) from None
    return web.json_response({"stream_id": stream_id, "action": "autofocus", "accepted": True}, status=202)


def add_stream_routes(app: web.Application, manager: StreamManager) -> None:
    app[STREAMS_KEY] = manager
    app.router.add_get(PREFIX, list_streams)
    app.router.add_post(f"{PREFIX}/restart", restart_all)
    app.router.add_post(f"{PREFIX}/validate", validate_stream)
    app.router.add_get(PREFIX + "/{stream_id}", get_stream)
    app.router.add_put(PREFIX + "/{stream_id}", put_stream)
    app.router.add_delete(PREFIX + "/{stream_id}", delete_stream)
    app.router.add_post(PREFIX + "/{stream_id}/{action:start|stop|restart}", command)
    app.router.add_get(PREFIX + "/{stream_id}/snapshot", snapshot)
    app.router.add_get(PREFIX + "/{stream_id}/motion/snapshot", motion_snapshot)
    app.router.add_get(PREFIX + "/{stream_id}/logs", logs)
    app.router.add_get(PREFIX + "/{stream_id}/controls", get_controls)
    app.router.add_put(PREFIX + "/{stream_id}/controls", put_controls)
    app.router.add_post(PREFIX + "/{stream_id}/autofocus", autofocus)
