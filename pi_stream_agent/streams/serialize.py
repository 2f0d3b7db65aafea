"""A stream configuration in the JSON form the API returns and accepts back (and ``streams.yaml`` holds):
``parse_stream(to_json(s)) == s``."""

from __future__ import annotations

from typing import Any

from pi_stream_agent.streams.audio import audio_to_json
from pi_stream_agent.streams.model import SourceConfig, StreamConfig


def source_to_json(source: SourceConfig) -> dict[str, Any]:
    if source.kind == "csi":
        return {"type": "csi", "camera": source.camera}
    if source.kind == "v4l2":
        return {"type": "v4l2", "device": source.device, "input_format": source.input_format}
    return {"type": "test", "pattern": source.pattern}


def to_json(stream: StreamConfig) -> dict[str, Any]:
    """The JSON form the API returns and accepts back: ``parse_stream(to_json(s)) == s``. Every key is
    present (None where unset); bitrates are ints in bit/s; keys in documentation order."""
    sub = stream.substream
    return {
        "id": stream.id,
        "name": stream.name,
        "source": source_to_json(stream.source),
        "width": stream.width,
        "height": stream.height,
        "fps": stream.fps,
        "bitrate": stream.bitrate,
        "keyframe_interval_s": stream.keyframe_interval_s,
        "encoder": stream.encoder,
        "rtsp_path": stream.rtsp_path,
        "enabled": stream.enabled,
        "substream": {
            "width": sub.width,
            "height": sub.height,
            "fps": sub.fps,
            "bitrate": sub.bitrate,
            "rtsp_path": sub.rtsp_path,
            "audio": sub.audio,
        }
        if sub is not None
        else None,
        "settings": dict(stream.settings),
        "v4l2_controls": dict(stream.v4l2_controls),
        "audio": audio_to_json(stream.audio),
        "motion_region": dict(stream.motion_region) if stream.motion_region is not None else None,
    }
