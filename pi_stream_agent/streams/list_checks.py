"""The rules of a list of streams, whatever the Pi: every id once, every RTSP path once (substreams
included), and one stream per camera or card."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pi_stream_agent.streams.model import StreamConfig
from pi_stream_agent.streams.problems import Problem, stream_label, stream_problem


def source_key(stream: StreamConfig) -> tuple[str, Any] | None:
    """Literal identity of a stream's source: two streams with the same key share a camera/card."""
    if stream.source.kind == "csi":
        return ("csi", stream.source.camera)
    if stream.source.kind == "v4l2":
        return ("v4l2", stream.source.device)
    return None  # test patterns can be generated any number of times


def describe_source(key: tuple[str, Any]) -> str:
    kind, value = key
    return f"CSI camera {value}" if kind == "csi" else f"capture device {value}"


def list_problems(
    streams: Sequence[StreamConfig | None],
    source_key: Callable[[StreamConfig], tuple[str, Any] | None],
    describe: Callable[[tuple[str, Any]], str],
) -> list[Problem]:
    found: list[Problem] = []
    ids: dict[str, int] = {}
    paths: dict[str, tuple[int, str]] = {}
    sources: dict[tuple[str, Any], int] = {}
    for index, stream in enumerate(streams):
        if stream is None:
            continue
        if stream.id in ids:
            found.append(
                stream_problem(
                    index,
                    stream.id,
                    "id",
                    f'"{stream.id}" is already the id of streams[{ids[stream.id]}]; '
                    "every stream needs its own id",
                    sentence="Another stream already has this id; every stream needs its own.",
                )
            )
        else:
            ids[stream.id] = index
        own = [("rtsp_path", stream.rtsp_path, "main stream")]
        if stream.substream is not None:
            own.append(("substream.rtsp_path", stream.substream.rtsp_path, "substream"))
        for field, path, role in own:
            if path in paths:
                other_index, other_role = paths[path]
                other = streams[other_index]
                owner = (
                    f"this stream's {other_role}"
                    if other_index == index
                    else f"the {other_role} of {stream_label(other_index, other.id if other else None)}"
                )
                plain_owner = f"this stream's {other_role}" if other_index == index else "another stream"
                found.append(
                    stream_problem(
                        index,
                        stream.id,
                        field,
                        f'"{path}" is already the path of {owner}; choose another',
                        sentence=f"This RTSP path is already used by {plain_owner}; choose another.",
                    )
                )
            else:
                paths[path] = (index, role)
        key = source_key(stream)
        if key is None:
            continue
        if key in sources:
            source_text = describe(key)
            first = streams[sources[key]]
            first_id = first.id if first else None
            found.append(
                stream_problem(
                    index,
                    stream.id,
                    "source",
                    f"{describe(key)} already feeds {stream_label(sources[key], first_id)}; a camera or card "
                    f'can feed one stream only: give "{first_id}" a substream instead',
                    sentence=f"{source_text[:1].upper()}{source_text[1:]} already feeds another stream; a "
                    "camera or card can feed one stream only: give that stream a substream instead.",
                )
            )
        else:
            sources[key] = index
    return found


def structure_problems(streams: Sequence[StreamConfig | None]) -> list[Problem]:
    """Duplicate ids, duplicate RTSP paths (substreams included) and a source named twice, without knowing
    the Pi. ``None`` entries (streams that did not parse) keep the others' list indexes right."""
    return list_problems(streams, source_key, describe_source)
