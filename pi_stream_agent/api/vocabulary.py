"""``GET /api/v1/vocabulary``: every word and limit a client needs to show and edit streams, with human names.

Built from the one owner of each list (the stream state and exit cause enums and their names in
``streams/model.py``, the field vocabulary and limits in ``streams/fields.py``, the picture settings in
``streams/settings.py``, the contributing conditions of an exit in ``telemetry/exit_context.py``), never from
a copy, so Home Assistant learns a new word by asking. Static while the agent runs: built once, on first
request.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from pi_stream_agent.streams.audio import vocabulary_json as audio_vocabulary_json
from pi_stream_agent.streams.fields import (
    ENCODER_NAMES,
    FIELD_LABELS,
    HARDWARE_ENCODER_MAX,
    INPUT_FORMATS,
    MAX_BITRATE,
    MAX_FPS,
    MAX_KEYFRAME_INTERVAL_S,
    MAX_NAME_LENGTH,
    MAX_RTSP_PATH_LENGTH,
    MAX_SIZE,
    MIN_BITRATE,
    MIN_FPS,
    MIN_KEYFRAME_INTERVAL_S,
    MIN_SIZE,
    RTSP_PATH_PATTERN,
    SIZE_STEP,
    SOURCE_TYPE_NAMES,
    STREAM_ID_PATTERN,
    TEST_PATTERNS,
)
from pi_stream_agent.streams.model import CAUSE_NAMES, PROBLEM_STATES, STATE_NAMES
from pi_stream_agent.streams.settings import vocabulary_json as stream_settings_json
from pi_stream_agent.telemetry.exit_context import CONDITION_NAMES

VOCABULARY_VERSION = 1
PATH = "/api/v1/vocabulary"


def _number(value: float) -> int | float:
    # 1.0 → 1, 0.2 → 0.2: limits read as a person writes them.
    return int(value) if float(value).is_integer() else value


@functools.cache
def vocabulary() -> dict[str, Any]:
    """The document (docs/api.md, "Vocabulary")."""
    size = {"min": MIN_SIZE, "max": MAX_SIZE, "step": SIZE_STEP}
    return {
        "vocabulary_version": VOCABULARY_VERSION,
        "stream_states": [
            {"id": state.value, "name": name, "problem": state in PROBLEM_STATES}
            for state, name in STATE_NAMES.items()
        ],
        "exit_causes": [{"id": cause.value, "name": name} for cause, name in CAUSE_NAMES.items()],
        # What the Pi was going through when a stream exited (last_exit.contributing_condition).
        "contributing_conditions": [{"id": key, "name": name} for key, name in CONDITION_NAMES.items()],
        "source_types": [{"id": kind, "name": name} for kind, name in SOURCE_TYPE_NAMES.items()],
        "test_patterns": [{"id": pattern.id, "name": pattern.name} for pattern in TEST_PATTERNS],
        "input_formats": [
            # fourccs: the V4L2 formats a card lists (GET /devices) that this input format reads.
            {"id": fmt.id, "name": fmt.name, "compressed": fmt.compressed, "fourccs": list(fmt.fourccs)}
            for fmt in INPUT_FORMATS
        ],
        "encoders": [{"id": choice, "name": name} for choice, name in ENCODER_NAMES.items()],
        "fields": [{"id": field, "name": name} for field, name in FIELD_LABELS.items()],
        "limits": {
            "width": dict(size),
            "height": dict(size),
            "fps": {"min": _number(MIN_FPS), "max": _number(MAX_FPS)},
            "bitrate_bps": {"min": MIN_BITRATE, "max": MAX_BITRATE},
            "keyframe_interval_s": {
                "min": _number(MIN_KEYFRAME_INTERVAL_S),
                "max": _number(MAX_KEYFRAME_INTERVAL_S),
            },
            "name_length": {"min": 1, "max": MAX_NAME_LENGTH},
            "rtsp_path_length": {"min": 1, "max": MAX_RTSP_PATH_LENGTH},
            "hardware_encoder_max_width": HARDWARE_ENCODER_MAX,
            "hardware_encoder_max_height": HARDWARE_ENCODER_MAX,
        },
        "stream_id_pattern": STREAM_ID_PATTERN,
        "rtsp_path_pattern": RTSP_PATH_PATTERN,
        # Picture settings (streams/settings.py); ranges are defaults, narrowed per camera by
        # GET /api/v1/streams/{id}/controls.
        "stream_settings": stream_settings_json(),
        # The stream's sound (streams/audio.py): codecs, the device words besides device ids, limits.
        "audio": audio_vocabulary_json(),
    }


async def get_vocabulary(request: web.Request) -> web.Response:
    return web.json_response(vocabulary())


def add_vocabulary_route(app: web.Application) -> None:
    app.router.add_get(PATH, get_vocabulary)
