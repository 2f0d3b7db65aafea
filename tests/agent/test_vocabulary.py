"""GET /api/v1/vocabulary from the real agent over loopback, held against the agent's own enums and schema;
and the problems of a refused stream as a person reads them (label + one plain sentence per field)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, get_args

import aiohttp
import pytest

from pi_stream_agent.agent import Agent
from pi_stream_agent.config import AgentConfig, TelemetrySettings
from pi_stream_agent.streams import fields
from pi_stream_agent.streams.model import (
    CAUSE_NAMES,
    STATE_NAMES,
    EncoderChoice,
    ExitCause,
    SourceKind,
    StreamState,
)
from pi_stream_agent.streams.problems import StreamConfigError
from pi_stream_agent.streams.schema import parse_stream, parse_streams


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    config = AgentConfig(
        host="127.0.0.1",
        port=0,
        state_dir=tmp_path / "state",
        telemetry=TelemetrySettings(interval_s=5.0),
        zeroconf_enabled=False,
        simulate=True,
        streams=(),
    )
    running = Agent(config)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def _get(agent: Agent, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{agent.port}{path}", headers=headers) as response:
            return response.status, await response.json()


async def _put(agent: Agent, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {agent.token}"}
    async with aiohttp.ClientSession() as session:
        async with session.put(f"http://127.0.0.1:{agent.port}{path}", json=body, headers=headers) as r:
            return r.status, await r.json()


def _ids(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["id"] for entry in entries]


async def test_the_vocabulary_is_the_agents_own(agent: Agent) -> None:
    status, vocabulary = await _get(agent, "/api/v1/vocabulary", agent.token)
    assert status == 200
    assert vocabulary["vocabulary_version"] == 1
    # Every state and cause the agent can emit, each with a human name.
    assert _ids(vocabulary["stream_states"]) == [state.value for state in StreamState]
    assert _ids(vocabulary["exit_causes"]) == [cause.value for cause in ExitCause]
    for entry in [*vocabulary["stream_states"], *vocabulary["exit_causes"]]:
        assert entry["name"] and entry["name"] != entry["id"], entry
    problems = {entry["id"] for entry in vocabulary["stream_states"] if entry["problem"]}
    assert problems == {"stalled", "backoff", "failed", "waiting_for_device"}
    # Every condition an exit can point to (contract K3), each with a human name.
    assert sorted(_ids(vocabulary["contributing_conditions"])) == sorted(
        ["under_voltage", "overheating", "memory_pressure", "cma_exhausted", "network", "storage"]
    )
    for entry in vocabulary["contributing_conditions"]:
        assert entry["name"] and entry["name"] != entry["id"], entry
    # Sources, encoders: the schema's Literal types are the words the schema accepts.
    assert _ids(vocabulary["source_types"]) == list(get_args(SourceKind))
    assert vocabulary["source_types"][0] == {"id": "csi", "name": "Camera module (ribbon cable)"}
    assert _ids(vocabulary["encoders"]) == list(get_args(EncoderChoice))
    # Test patterns and input formats: exactly what the schema accepts, and nothing it refuses.
    for pattern in _ids(vocabulary["test_patterns"]):
        assert parse_stream(_stream(source={"type": "test", "pattern": pattern})).source.pattern == pattern
    with pytest.raises(StreamConfigError):
        parse_stream(_stream(source={"type": "test", "pattern": "cellauto"}))
    compressed = {entry["id"] for entry in vocabulary["input_formats"] if entry["compressed"]}
    assert compressed == {"mjpeg", "h264"}
    assert vocabulary["input_formats"][0]["fourccs"] == ["MJPG", "JPEG"]
    for entry in vocabulary["input_formats"]:
        source = {"type": "v4l2", "device": "/dev/video0", "input_format": entry["id"]}
        assert parse_stream(_stream(source=source)).source.input_format == entry["id"]
    # Limits: the edges are accepted, one step beyond is refused.
    limits = vocabulary["limits"]
    assert limits["width"] == {"min": 32, "max": 4096, "step": 2}
    assert limits["fps"] == {"min": 1, "max": 120}
    assert limits["bitrate_bps"] == {"min": 50_000, "max": 50_000_000}
    assert limits["keyframe_interval_s"] == {"min": 0.2, "max": 10}
    assert limits["hardware_encoder_max_width"] == fields.HARDWARE_ENCODER_MAX == 1920
    for key, low, high, below, above in [
        ("width", 32, 4096, 30, 4098),
        ("fps", 1, 120, 0.5, 121),
        ("bitrate", 50_000, 50_000_000, 49_999, 50_000_001),
        ("keyframe_interval_s", 0.2, 10, 0.1, 11),
    ]:
        parse_stream(_stream(**{key: low}, **({"height": 32} if key == "width" else {})))
        parse_stream(_stream(**{key: high}))
        for bad in (below, above):
            with pytest.raises(StreamConfigError):
                parse_stream(_stream(**{key: bad}))
    # Patterns: the published regular expressions decide as the schema does.
    id_pattern = re.compile(vocabulary["stream_id_pattern"])
    path_pattern = re.compile(vocabulary["rtsp_path_pattern"])
    for candidate in ["garage", "cam-1", "a" * 32, "Garage", "-x", "a" * 33, "a b"]:
        accepted = _accepts(id=candidate, rtsp_path="p")
        assert (id_pattern.fullmatch(candidate) is not None) == accepted, candidate
    for candidate in ["garage", "cams/garage.main~1", "/x", "x/", "a b", "a//b"]:
        accepted = _accepts(rtsp_path=candidate)
        assert (path_pattern.fullmatch(candidate) is not None) == accepted, candidate
    # Every field a problem can name has a label.
    labels = {entry["id"]: entry["name"] for entry in vocabulary["fields"]}
    assert labels["substream.width"] == "Substream width"


async def test_the_vocabulary_needs_the_token(agent: Agent) -> None:
    status, body = await _get(agent, "/api/v1/vocabulary", None)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"


def test_every_state_and_cause_has_a_name() -> None:
    assert set(STATE_NAMES) == set(StreamState)
    assert set(CAUSE_NAMES) == set(ExitCause)


def _stream(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "garage",
        "source": {"type": "csi", "camera": 0},
        "width": 1280,
        "height": 720,
        "fps": 30,
        "bitrate": "2M",
    }
    data.update(overrides)
    return data


def _accepts(**overrides: Any) -> bool:
    try:
        parse_stream(_stream(**overrides))
    except StreamConfigError:
        return False
    return True


# -------------------------------------------------------------------------------- problems for a person

# A key path (substream.width, but not e.g.), a list index, an id prefix or a backtick.
_INTERNAL = re.compile(r'streams\[|`|\b(?!e\.g\b)[a-z_]+\.[a-z_]+\b|\(id "')

BAD_STREAMS: list[dict[str, Any]] = [
    _stream(width=1281, height="720", fps=0, bitrate="2X", keyframe_interval_s=20, encoder="gpu"),
    _stream(rtsp_path="/cam 1", enabled="yes", fsp=30, name=""),
    _stream(source={"type": "usb"}),
    _stream(source={"type": "csi", "camera": -1, "lens": 1}),
    _stream(source={"type": "v4l2", "device": "nope nope", "input_format": "avi"}),
    _stream(source={"type": "test", "pattern": "cellauto"}, encoder="copy"),
    _stream(source={"type": "v4l2", "device": "/dev/video0", "input_format": "yuyv422"}, encoder="copy"),
    _stream(substream={"width": 1280, "height": 720, "fps": 60, "bitrate": "1M", "size": 1}),
    _stream(substream={"width": 641}),
    {"source": {"type": "test"}},
]


@pytest.mark.parametrize("data", BAD_STREAMS)
def test_every_message_is_a_plain_sentence(data: dict[str, Any]) -> None:
    with pytest.raises(StreamConfigError) as exc:
        parse_stream(data)
    for problem in exc.value.problems:
        shown = problem.to_json()
        assert shown["message"][:1].isupper() and shown["message"].endswith("."), shown
        assert not _INTERNAL.search(shown["message"]), shown
        assert shown["text"] == str(problem)
        if problem.field in fields.FIELD_LABELS:
            assert shown["label"] == fields.FIELD_LABELS[problem.field]


def test_list_problems_name_no_other_stream() -> None:
    twice = [_stream(), _stream(rtsp_path="other"), _stream(id="porch", rtsp_path="garage")]
    with pytest.raises(StreamConfigError) as exc:
        parse_streams(twice)
    messages = [problem.message for problem in exc.value.problems]
    assert messages == [
        "Another stream already has this id; every stream needs its own.",
        "CSI camera 0 already feeds another stream; a camera or card can feed one stream only: give that "
        "stream a substream instead.",
        "This RTSP path is already used by another stream; choose another.",
        "CSI camera 0 already feeds another stream; a camera or card can feed one stream only: give that "
        "stream a substream instead.",
    ]


async def test_a_refused_stream_says_it_at_the_field(agent: Agent) -> None:
    body = _stream(substream={"width": 1280, "height": 360, "fps": 15, "bitrate": "500k"})
    status, reply = await _put(agent, "/api/v1/streams/garage", body)
    assert status == 422
    (problem,) = reply["error"]["details"]["problems"]
    assert problem == {
        "stream_id": "garage",
        "field": "substream.width",
        "label": "Substream width",
        "message": "Substream width must be smaller than the main stream's width (1280).",
        "severity": "error",
        "text": 'streams[0] (id "garage"): substream.width: must be smaller than the main width (1280), got '
        "1280",
    }
