"""Picture settings and camera controls (issue 8 §2): the definitions, the config keys, what a camera offers,
the check of a change, and the rpicam-vid options and ffmpeg filters they become — the options run through
the rpicam-vid stand-in, which refuses what the real one refuses."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pi_stream_agent.rootfs import Root
from pi_stream_agent.streams.controls import build_offer, check_change, document, tuning_files
from pi_stream_agent.streams.fit import validate_streams
from pi_stream_agent.streams.model import PublishEnvironment, RtspSettings, SourceConfig, StreamConfig
from pi_stream_agent.streams.pipelines import PipelineError, build_pipeline, rpicam_setting_args
from pi_stream_agent.streams.problems import StreamConfigError
from pi_stream_agent.streams.schema import parse_stream
from pi_stream_agent.streams.serialize import to_json
from pi_stream_agent.streams.settings import SETTINGS, vocabulary_json
from pi_stream_agent.streams.v4l2_controls import parse_get, set_argv
from tests.agent.camera_controls import (
    CARD_CONTROLS,
    FLIP_CONTROLS,
    IMX708_CONTROLS,
    OV5647_CONTROLS,
    csi_camera,
)
from tests.agent.helpers import FixtureTree
from tests.agent.rpicam_options import RPICAM_OPTIONS_USED, RPICAM_VID_OPTIONS
from tests.agent.streams_helpers import RPICAM_STANDIN

PI4 = PublishEnvironment(rtsp=RtspSettings(), hardware_h264_encoder=True, soc="BCM2711")
PI5 = PublishEnvironment(rtsp=RtspSettings(), hardware_h264_encoder=False, soc="BCM2712")
EVERY_SETTING = {
    "rotation": 180,
    "hflip": True,
    "vflip": False,
    "af_mode": "continuous",
    "af_range": "macro",
    "af_speed": "fast",
    "lens_position": 2.5,
    "hdr": True,
    "exposure": "sport",
    "shutter_us": 10000,
    "gain": 2.0,
    "ev": -0.5,
    "metering": "spot",
    "awb": "daylight",
    "awb_red_gain": 1.5,
    "awb_blue_gain": 2.25,
    "brightness": 0.1,
    "contrast": 1.2,
    "saturation": 0.8,
    "sharpness": 1.5,
    "denoise": "cdn_fast",
    "flicker_period": "50hz",
    "tuning_file": "imx708_noir",
    "zoom": 2.0,
}


def csi(**changes: Any) -> StreamConfig:
    base = {"id": "cam", "source": {"type": "csi", "camera": 0}, "width": 640, "height": 480, "fps": 30}
    return parse_stream({**base, "bitrate": "1M", **changes})


def card(**changes: Any) -> StreamConfig:
    source = {"type": "v4l2", "device": "/dev/video2", "input_format": "mjpeg"}
    return parse_stream(
        {"id": "hdmi", "source": source, "width": 640, "height": 480, "fps": 30, "bitrate": "1M", **changes}
    )


# ------------------------------------------------------------------------------------------ definitions


def test_every_setting_has_what_a_client_shows() -> None:
    for entry in vocabulary_json():
        assert entry["name"] and entry["icon"] and entry["entity_category"] == "config"
        assert entry["kind"] in ("select", "number", "switch", "button")
        if entry["kind"] == "number":
            assert entry["min"] < entry["max"] and entry["step"] > 0
    by_id = {entry["id"]: entry for entry in vocabulary_json()}
    assert by_id["rotation"]["options"] == [{"id": "0", "name": "0°"}, {"id": "180", "name": "180°"}]
    assert by_id["rotation"]["sources"] == ["csi", "v4l2", "test"] and by_id["rotation"]["control"] is None
    assert by_id["autofocus"]["kind"] == "button" and by_id["autofocus"]["control"] == "AfMode"
    # The common ones are enabled by default, the rest not (issue 8 §3).
    enabled = {entry["id"] for entry in vocabulary_json() if entry["enabled_by_default"]}
    sound = {"sound_detection", "sound_threshold_dbfs"}  # issue 11: the switch and its threshold
    assert sound <= enabled
    assert enabled - sound == {
        "rotation", "hflip", "vflip", "af_mode", "exposure", "brightness", "autofocus",
        "motion_detection", "motion_sensitivity",
    }  # fmt: skip


def test_every_rpicam_option_written_is_a_verified_real_one_and_the_standin_takes_them(
    tmp_path: Path,
) -> None:
    known = {opt.name: opt for opt in RPICAM_VID_OPTIONS}
    stream = csi(settings=EVERY_SETTING)
    tree = FixtureTree(tmp_path)
    tree.write("usr/share/libcamera/ipa/rpi/vc4/imx708_noir.json", "{}")
    for env in (PI4, PI5):
        argv = build_pipeline(stream, env).processes[0].argv
        written = {arg[2:].split("=")[0] for arg in argv[1:] if arg.startswith("--")}
        assert written <= RPICAM_OPTIONS_USED
        assert all(name in known and not known[name].libav_only for name in written)
    argv = list(build_pipeline(stream, PI4).processes[0].argv)
    assert argv[argv.index("--awbgains") + 1] == "1.5,2.25"
    assert argv[argv.index("--roi") + 1] == "0.25,0.25,0.5,0.5"
    assert argv[argv.index("--flicker-period") + 1] == "10000us"
    assert argv[argv.index("--shutter") + 1] == "10000us"
    assert "--hdr=auto" in argv
    assert argv[argv.index("--tuning-file") + 1] == "/usr/share/libcamera/ipa/rpi/vc4/imx708_noir.json"
    pi5_argv = list(build_pipeline(stream, PI5).processes[0].argv)
    assert (
        pi5_argv[pi5_argv.index("--tuning-file") + 1] == "/usr/share/libcamera/ipa/rpi/pisp/imx708_noir.json"
    )
    # The stand-in parses them as rpicam-vid does and runs (two frames).
    argv[0] = str(RPICAM_STANDIN)
    argv += ["--frames", "2"]  # --output - : frames to stdout, discarded here
    run = subprocess.run(
        argv,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "RPICAM_STANDIN_ROOT": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rotation", "90"], "transforms requiring transpose not supported"),
        (["--rotation", "45"], "illegal rotation value"),
        (["--ev", "one"], "the argument ('one') for option '--ev' is invalid"),
        (["--metering", "matrixx"], "Invalid metering mode: matrixx"),
        (["--autofocus-mode", "on"], "Invalid AfMode:on"),
        (["--awb", "sunny"], "Invalid AWB mode: sunny"),
        (["--awbgains", "1.5"], "Invalid AWB gains"),
        (["--hdr=on"], "Invalid HDR option provided: on"),
        (["--lens-position", "near"], "Invalid lens position: near"),
        (["--shutter", "fast"], "Invalid time string provided"),
        (["--denoise", "cdn"], "Invalid denoise mode cdn"),
        (["--zoom", "2"], "unrecognised option '--zoom'"),
    ],
)
def test_standin_refuses_what_rpicam_vid_refuses(args: list[str], message: str) -> None:
    run = subprocess.run(
        [str(RPICAM_STANDIN), *args, "--frames", "1", "-o", "-"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 255
    assert f"ERROR: *** {message} ***" in run.stderr


def test_options_used_table_matches_the_builder() -> None:
    """RPICAM_OPTIONS_USED names every option some setting writes."""
    stream = csi(settings={**EVERY_SETTING, "vflip": True})
    written = {arg[2:].split("=")[0] for arg in rpicam_setting_args(stream, PI4) if arg.startswith("--")}
    options = {setting.rpicam_option for setting in SETTINGS if setting.rpicam_option}
    assert written == options
    assert options <= RPICAM_OPTIONS_USED


# ---------------------------------------------------------------------------------------------- config


def test_settings_round_trip_and_plain_messages() -> None:
    stream = csi(settings={"rotation": 180, "af_mode": "continuous", "brightness": 0.1})
    assert stream.settings == {"rotation": "180", "af_mode": "continuous", "brightness": 0.1}
    assert parse_stream(to_json(stream)) == stream
    with pytest.raises(StreamConfigError) as exc:
        csi(settings={"rotation": 90, "brightness": 3, "hflip": "yes", "zoom_level": 2, "awb_red_gain": 1.5})
    messages = {problem.field: problem.message for problem in exc.value.problems}
    assert messages == {
        "settings.rotation": "Rotation must be one of 0, 180.",
        "settings.brightness": "Brightness must be between -1 and 1.",
        "settings.hflip": "Flip horizontally must be true or false.",
        "settings.zoom_level": messages["settings.zoom_level"],
        "settings.awb_red_gain": "White balance red gain needs white balance blue gain too "
        "(rpicam-vid takes both).",
    }
    assert messages["settings.zoom_level"].startswith('The setting "zoom_level" is not a picture setting')
    labels = {problem.field: problem.label for problem in exc.value.problems}
    assert labels["settings.rotation"] == "Rotation"
    with pytest.raises(StreamConfigError) as exc:
        parse_stream({**to_json(csi()), "settings": {"brightness": 0.1}, "source": {"type": "test"}})
    assert (
        exc.value.problems[0].message == "Brightness applies to cameras on the ribbon connector (CSI) only."
    )
    with pytest.raises(StreamConfigError) as exc:
        csi(v4l2_controls={"brightness": 1})
    assert "USB cameras and capture cards only" in exc.value.problems[0].message
    with pytest.raises(StreamConfigError) as exc:
        card(v4l2_controls={"Bright ness": 1, "contrast": "high"})
    assert [p.field for p in exc.value.problems] == ["v4l2_controls.Bright ness", "v4l2_controls.contrast"]


def test_config_checked_against_the_camera() -> None:
    devices = {"csi_cameras": [csi_camera("ov5647", OV5647_CONTROLS)], "capture_devices": []}
    board = {"hardware_h264_encoder": True, "soc": "BCM2711"}
    problems = validate_streams(
        [csi(settings={"af_mode": "auto", "rotation": 180})], devices, board, simulated=False
    )
    assert [(p.field, p.message, p.severity) for p in problems] == [
        ("settings.af_mode", "Autofocus mode is not available for this camera.", "error")
    ]
    # Without a -v listing the camera's controls are unknown: only orientation is checked.
    devices["csi_cameras"][0]["controls"] = {}
    assert validate_streams([csi(settings={"af_mode": "auto"})], devices, board, simulated=False) == []


# ------------------------------------------------------------------------------------------- the offer


def test_a_camera_offers_what_it_lists_with_its_ranges(tmp_path: Path) -> None:
    tree = FixtureTree(tmp_path)
    for stem in ("imx708", "imx708_noir", "imx708_wide", "imx477"):
        tree.write(f"usr/share/libcamera/ipa/rpi/vc4/{stem}.json", "{}")
    tuning = tuning_files(Root(tmp_path), "imx708_wide", pisp=False)
    assert tuning == ["imx708", "imx708_noir", "imx708_wide"]
    stream = csi(settings={"lens_position": 3.0})
    doc = document(build_offer(stream, camera=csi_camera("imx708", IMX708_CONTROLS), tuning=tuning))
    by_id = {entry["id"]: entry for entry in doc["controls"]}
    assert doc["stream_id"] == "cam"
    assert "hdr" not in by_id  # a Pi 4 lists no HdrMode
    assert by_id["lens_position"]["max"] == 15.0 and by_id["lens_position"]["value"] == 3.0
    assert (
        by_id["lens_position"]["unit"] == "dioptres" and by_id["lens_position"]["enabled_by_default"] is False
    )
    assert by_id["ev"]["min"] == -8.0 and by_id["ev"]["max"] == 8.0
    assert by_id["gain"]["min"] == pytest.approx(1.122807)
    assert by_id["rotation"]["value"] is None and by_id["rotation"]["apply"] == "restart"
    assert [o["name"] for o in by_id["tuning_file"]["options"]] == ["imx708", "imx708 NoIR", "imx708 wide"]
    assert by_id["autofocus"]["kind"] == "button"
    fixed = document(build_offer(csi(), camera=csi_camera("ov5647", OV5647_CONTROLS)))
    ids = {entry["id"] for entry in fixed["controls"]}
    assert not ids & {"af_mode", "af_range", "af_speed", "lens_position", "autofocus", "tuning_file"}
    assert {"rotation", "brightness", "awb"} <= ids


def test_a_card_offers_its_own_controls() -> None:
    device = {"controls": {**CARD_CONTROLS}}
    doc = document(build_offer(card(v4l2_controls={"brightness": 10}), device=device))
    by_id = {entry["id"]: entry for entry in doc["controls"]}
    assert by_id["v4l2:brightness"] == {
        "id": "v4l2:brightness",
        "source": "v4l2",
        "kind": "number",
        "name": "Brightness",
        "value": 10,
        "apply": "live",
        "enabled_by_default": True,
        "read_only": False,
        "inactive": False,
        "min": -64,
        "max": 64,
        "step": 1,
        "default": 0,
    }
    assert by_id["v4l2:power_line_frequency"]["kind"] == "select"
    assert by_id["v4l2:power_line_frequency"]["value"] == "1"
    assert by_id["v4l2:white_balance_automatic"]["kind"] == "switch"
    assert by_id["v4l2:white_balance_temperature"]["inactive"] is True
    assert by_id["v4l2:exposure_time_absolute"]["read_only"] is True
    assert by_id["v4l2:exposure_time_absolute"]["name"] == "Exposure Time Absolute"
    # No flip controls: orientation by an ffmpeg filter, applied by a restart.
    assert by_id["rotation"]["apply"] == "restart"
    flips = document(build_offer(card(), device={"controls": {**CARD_CONTROLS, **FLIP_CONTROLS}}))
    flip_ids = {entry["id"]: entry for entry in flips["controls"]}
    assert flip_ids["rotation"]["apply"] == "live" and "v4l2:horizontal_flip" not in flip_ids
    # Passed through untouched and no flip controls: no orientation at all.
    passthrough = document(build_offer(card(encoder="copy"), device=device))
    assert "rotation" not in {entry["id"] for entry in passthrough["controls"]}


# ------------------------------------------------------------------------------------------- a change


def test_a_change_is_checked_whole_against_the_camera() -> None:
    offer = build_offer(csi(), camera=csi_camera("imx708", IMX708_CONTROLS))
    change, problems = check_change(offer, {"rotation": "180", "brightness": 0.1, "af_mode": "continuous"})
    assert problems == [] and change is not None
    assert change.settings == {"rotation": "180", "af_mode": "continuous", "brightness": 0.1}
    assert change.restart and not change.live
    change, problems = check_change(
        offer, {"lens_position": 20, "ev": "high", "hdr": True, "af_mode": "fast", "autofocus": True}
    )
    assert change is None
    assert {p.field: p.message for p in problems} == {
        "lens_position": "Lens position must be between 0 and 15 on this camera.",
        "ev": "Exposure compensation must be a number.",
        "hdr": "HDR is not available for this camera.",
        "af_mode": "Autofocus mode must be one of manual, auto, continuous.",
        "autofocus": "Autofocus is an action: use its own request.",
    }
    assert {p.field: p.label for p in problems}["lens_position"] == "Lens position"
    assert all("settings." not in p.message and "`" not in p.message for p in problems)
    # null: back to the camera's default.
    offer = build_offer(csi(settings={"brightness": 0.2}), camera=csi_camera("imx708", IMX708_CONTROLS))
    change, _ = check_change(offer, {"brightness": None})
    assert change is not None and change.settings == {} and change.restart


def test_a_card_change_is_live_and_checked_like_the_driver() -> None:
    device = {"controls": {**CARD_CONTROLS}}
    offer = build_offer(card(), device=device)
    change, problems = check_change(offer, {"v4l2:brightness": 10, "v4l2:power_line_frequency": "2"})
    assert problems == [] and change is not None
    assert change.v4l2_controls == {"brightness": 10, "power_line_frequency": 2}
    assert change.live and not change.restart
    _, problems = check_change(
        offer,
        {
            "v4l2:brightness": 65,
            "v4l2:contrast": 32,
            "v4l2:power_line_frequency": "3",
            "v4l2:white_balance_temperature": 5000,
            "v4l2:exposure_time_absolute": 100,
            "v4l2:focus_absolute": 1,
        },
    )
    assert {p.field: p.message for p in problems} == {
        "v4l2:brightness": "Brightness must be between -64 and 64.",
        "v4l2:contrast": "Contrast must be 0 plus a multiple of 5.",
        "v4l2:power_line_frequency": "Power Line Frequency must be one of 0 (Disabled), 1 (50 Hz), "
        "2 (60 Hz).",
        "v4l2:white_balance_temperature": "White Balance Temperature is inactive now (another control, "
        "such as an automatic mode, decides it).",
        "v4l2:exposure_time_absolute": "Exposure Time Absolute is read-only on this camera.",
        "v4l2:focus_absolute": "Focus Absolute is not a control of this camera.",
    }
    passthrough = build_offer(card(encoder="copy"), device=device)
    _, problems = check_change(passthrough, {"rotation": "180"})
    assert problems[0].message.startswith("Rotation cannot be changed for this card: it has no flip controls")


# ------------------------------------------------------------------------------------ orientation filters


def test_orientation_filters_for_cards_and_patterns() -> None:
    turned = card(settings={"rotation": 180})
    env = replace(PI4, device_path="/dev/video2", device_controls=dict(CARD_CONTROLS))
    spec = build_pipeline(turned, env)
    argv = list(spec.processes[0].argv)
    assert argv[argv.index("-vf") + 1] == "hflip,vflip"
    with_sub = replace(card(settings={"hflip": True}), substream=None)
    assert "-vf" in build_pipeline(with_sub, env).processes[0].argv
    # The card flips itself: no filter, v4l2-ctl sets its controls.
    flips = replace(env, device_controls={**CARD_CONTROLS, **FLIP_CONTROLS})
    assert "-vf" not in build_pipeline(turned, flips).processes[0].argv
    with pytest.raises(PipelineError, match="no flip controls"):
        build_pipeline(replace(turned, encoder="copy"), env)
    pattern = StreamConfig(
        id="t",
        source=SourceConfig(kind="test"),
        width=320,
        height=240,
        fps=15,
        bitrate=300_000,
        rtsp_path="t",
        settings={"vflip": True},
    )
    argv = list(build_pipeline(pattern, PI5).processes[0].argv)
    assert argv[argv.index("-vf") + 1] == "vflip"


def test_v4l2_ctl_argv_and_readback() -> None:
    assert set_argv("v4l2-ctl", "/dev/video2", {"brightness": 10, "white_balance_automatic": False}) == [
        "v4l2-ctl",
        "-d",
        "/dev/video2",
        "-c",
        "brightness=10,white_balance_automatic=0",
    ]
    assert parse_get("brightness: 10\npower_line_frequency: 2\nbogus line\n") == {
        "brightness": 10,
        "power_line_frequency": 2,
    }


def test_each_default_is_a_value_the_setting_accepts() -> None:
    """A setting's default is what a client shows while nothing is set ("0°", off): it must be one of the
    setting's own values, and the ones every picture has (orientation) must have one."""
    for setting in SETTINGS:
        if setting.default is None:
            continue
        if setting.kind == "select":
            assert setting.default in setting.option_ids, setting.id
        elif setting.kind == "switch":
            assert isinstance(setting.default, bool), setting.id
        elif setting.kind == "number":
            assert isinstance(setting.default, float), setting.id
            assert setting.min is not None and setting.max is not None
            assert setting.min <= setting.default <= setting.max, setting.id
        else:
            raise AssertionError(f"{setting.id}: a {setting.kind} has no default")
    defaults = {setting.id: setting.default for setting in SETTINGS}
    assert (defaults["rotation"], defaults["hflip"], defaults["vflip"]) == ("0", False, False)
    assert {entry["id"]: entry.get("default") for entry in vocabulary_json()}["rotation"] == "0"
