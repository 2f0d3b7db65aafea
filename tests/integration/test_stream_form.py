"""The stream editor's pure form logic (stream_form.py), with the agent's own vocabulary document.

The vocabulary is the one the agent serves (``pi_stream_agent.api.vocabulary``), so these tests break when
the agent's words and the forms drift apart.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from custom_components.pi_stream.api import PiStreamError
from custom_components.pi_stream.stream_form import (
    REFUSED_FIELDS,
    REFUSED_PREFIX,
    card_formats,
    card_rates,
    card_resolutions,
    csi_rates,
    csi_resolutions,
    main_config,
    pattern_choice,
    refusal,
    settings_form,
    source_choices,
    substream_form,
    warning_text,
    with_substream,
)
from custom_components.pi_stream.vocabulary import AgentVocabulary
from pi_stream_agent.api.vocabulary import vocabulary as agent_vocabulary
from tests.integration.test_options_flow import DEVICES, IMX708, STABLE_PATH, USB_CARD
from tests.integration.test_repo_hygiene import en

VOCABULARY = AgentVocabulary.from_json(agent_vocabulary())


def test_source_choices_match_a_stream_named_by_id_path_or_node() -> None:
    by_id_path = {"type": "csi", "camera": IMX708["id_path"]}
    by_node = {"type": "v4l2", "device": "/dev/video2"}
    by_id = {"type": "v4l2", "device": "usb-534d_USB_Video"}
    for current in (by_id_path, by_node, by_id):
        # Already offered under its listed name: not added a second time.
        assert len(source_choices(DEVICES, VOCABULARY, current)) == 3
    missing_camera = source_choices(DEVICES, VOCABULARY, {"type": "csi", "camera": 1})
    assert [c.value for c in missing_camera] == ["csi:1", "csi:0", f"v4l2:{STABLE_PATH}", "test"]
    assert missing_camera[0].source == {"type": "csi", "camera": 1}
    assert missing_camera[0].device is None
    # The test pattern by the agent's name for that source type.
    assert missing_camera[-1].label == "Test pattern"


def test_choices_for_devices_that_report_little() -> None:
    # A 2021 camera listing has no frame rates; a card found by sysfs alone has no formats.
    camera = {
        "index": 0,
        "model": "ov5647",
        "modes": [{"width": 1296, "height": 972}, {"width": 640, "height": 480}],
    }
    assert csi_resolutions(camera)[0] == {"value": "1296x972", "label": "1296×972"}
    assert "1920x1080" not in [option["value"] for option in csi_resolutions(camera)]
    assert [option["value"] for option in csi_rates(camera)][-1] == "120"
    card = {
        "id": "usb-1",
        "name": "Cam",
        "formats": [{"fourcc": "XXXX", "sizes": [{"width": 640, "height": 480}]}],
    }
    assert card_formats(card, VOCABULARY.input_formats) == []
    assert card_resolutions(card) == [{"value": "640x480", "label": "640×480"}]
    assert card_rates(card) == []
    labels = [c.label for c in source_choices({"capture_devices": [card]}, VOCABULARY)]
    assert labels == ["Cam (usb-1)", "Test pattern"]


def test_card_formats_are_the_agents_input_formats() -> None:
    # MJPG and YUYV as the agent names them; a fourcc listed twice (JPEG and MJPG) is offered once.
    card = {**USB_CARD, "formats": [*USB_CARD["formats"], {"fourcc": "JPEG", "sizes": []}]}
    assert card_formats(card, VOCABULARY.input_formats) == [
        {"value": "mjpeg", "label": "Motion-JPEG"},
        {"value": "yuyv422", "label": "YUYV 4:2:2 (raw)"},
    ]


def test_a_camera_rate_is_offered_up_to_its_rounded_fastest_mode() -> None:
    # 14.35 fps at most: 10 is offered, 15 is not; 120.13 offers 120.
    slow = {"modes": [{"width": 4608, "height": 2592, "fps": 14.35}]}
    assert [option["value"] for option in csi_rates(slow)] == ["5", "10"]
    assert [option["value"] for option in csi_rates(IMX708)][-1] == "120"


def test_copy_is_offered_only_where_there_is_a_card_stream_to_pass() -> None:
    choices = {choice.kind: choice for choice in source_choices(DEVICES, VOCABULARY)}
    for kind, offered in (("csi", False), ("test", False), ("v4l2", True)):
        form = settings_form(choices[kind], VOCABULARY, None)
        encoders = next(value for key, value in form.schema.schema.items() if str(key) == "encoder")
        assert ("copy" in [option["value"] for option in encoders.config["options"]]) is offered


def test_a_substream_is_suggested_at_half_size() -> None:
    main = {"width": 1280, "height": 720, "fps": 30.0, "bitrate": 2_000_000}
    assert substream_form(VOCABULARY, main, None).suggested == {
        "substream_width": 640,
        "substream_height": 360,
        "substream_fps": 10.0,
        "substream_bitrate": 250,
    }
    # Never below the agent's smallest size and bitrate.
    tiny = {"width": 40, "height": 40, "fps": 5, "bitrate": 60_000}
    suggested = substream_form(VOCABULARY, tiny, None).suggested
    assert (suggested["substream_width"], suggested["substream_bitrate"]) == (32, 50)
    assert suggested["substream_fps"] == 5.0


def test_main_config_keeps_what_the_form_does_not_show() -> None:
    current = {"enabled": False, "rtsp_path": "cams/porch", "substream": None}
    form_input = {
        "pattern": "smptebars",
        "width": 320,
        "height": 240,
        "fps": 10,
        "bitrate": 300,
        "keyframe_interval": 1,
        "encoder": "auto",
    }
    config, errors = main_config(
        "porch", None, pattern_choice(VOCABULARY), current, form_input, vocabulary=VOCABULARY
    )
    assert errors == {}
    assert (config["enabled"], config["rtsp_path"], config["bitrate"]) == (False, "cams/porch", 300_000)


def test_an_edit_keeps_the_motion_region_and_the_sound() -> None:
    """Set on the Pi or through the API, not in the forms: saving a form must not drop them."""
    region = {"x": 0.1, "y": 0.2, "width": 0.5, "height": 0.5}
    audio = {"device": "auto", "codec": "aac"}
    current = {
        "motion_region": region,
        "audio": audio,
        "substream": {"width": 160, "height": 120, "fps": 5, "bitrate": 100_000, "audio": True},
    }
    form_input = {
        "pattern": "smptebars",
        "width": 320,
        "height": 240,
        "fps": 10,
        "bitrate": 300,
        "keyframe_interval": 1,
        "encoder": "auto",
    }
    config, _ = main_config(
        "porch", None, pattern_choice(VOCABULARY), current, form_input, vocabulary=VOCABULARY
    )
    assert (config["motion_region"], config["audio"]) == (region, audio)
    sub_input = {"substream_width": 192, "substream_height": 144, "substream_fps": 4, "substream_bitrate": 80}
    assert with_substream(config, current, sub_input)["substream"]["audio"] is True
    # A stream without them gets none (the agent's defaults: the whole picture, no sound).
    config, _ = main_config("porch", None, pattern_choice(VOCABULARY), {}, form_input, vocabulary=VOCABULARY)
    assert "motion_region" not in config and "audio" not in config


def problem(field: str | None, message: str, **extra: Any) -> dict[str, Any]:
    return {"stream_id": "porch", "field": field, "message": message, "severity": "error", **extra}


def test_each_problem_once_at_its_field() -> None:
    problems = [
        problem("width", "Width must be even."),
        problem("width", "Width must be even."),  # the same twice: said once
        problem("height", "Height must be even."),
        problem("substream.width", "Substream width must be smaller."),
        problem("encoder", "Ignored.", severity="warning"),
    ]
    answer = refusal(problems, "porch", {"resolution", "fps", "encoder"})
    # A camera's form has one resolution field for width and height; the substream is another step.
    assert answer.errors == {"resolution": "refused_resolution", "base": "agent_refused"}
    assert answer.placeholders == {
        "refused_resolution": "Width must be even. Height must be even.",
        "problems": "Substream width must be smaller.",
    }


def test_problems_of_other_streams_or_no_field_go_to_the_summary() -> None:
    problems = [
        problem("width", "Another stream's width.", stream_id="garage"),
        problem(None, "Two streams use one camera."),
    ]
    answer = refusal(problems, "porch", {"width"})
    assert answer.errors == {"base": "agent_refused"}
    assert answer.placeholders["problems"] == "Another stream's width. Two streams use one camera."
    # No problems at all: the agent's message says what went wrong.
    assert refusal([], "porch", {"width"}, "Storage full.").placeholders["problems"] == "Storage full."


def test_every_field_error_shows_its_placeholder() -> None:
    errors = en()["options"]["error"]
    for name in REFUSED_FIELDS:
        assert errors[REFUSED_PREFIX + name] == "{" + REFUSED_PREFIX + name + "}"


def test_every_limit_placeholder_a_description_uses_is_given() -> None:
    choices = source_choices(DEVICES, VOCABULARY)
    main = {"width": 640, "height": 360, "fps": 15, "bitrate": 1_000_000}
    forms = {
        "stream_settings": settings_form(choices[0], VOCABULARY, None),
        "pattern_settings": settings_form(choices[-1], VOCABULARY, None),
        "substream": substream_form(VOCABULARY, main, None),
    }
    for step_id, form in forms.items():
        step = en()["options"]["step"][step_id]
        texts = [step["description"], *step["data_description"].values()]
        used = {name for text in texts for name in _placeholders(text)} - {"stream"}
        assert used <= set(form.placeholders), step_id


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def test_an_unreadable_vocabulary_is_an_agent_error() -> None:
    with pytest.raises(PiStreamError, match="vocabulary"):
        AgentVocabulary.from_json({"vocabulary_version": 1})
    with pytest.raises(PiStreamError, match="vocabulary"):
        AgentVocabulary.from_json({**agent_vocabulary(), "encoders": ["auto"]})


def test_warnings_in_plain_words() -> None:
    warning = problem("encoder", "The Pi 5 encodes in software.", severity="warning", text="streams[0]: …")
    assert warning_text(warning) == "The Pi 5 encodes in software."
    assert warning_text('streams[0] (id "porch"): encoder: …') == 'streams[0] (id "porch"): encoder: …'
