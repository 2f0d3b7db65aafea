"""Stream configuration: schema and messages, the rtsp: section, and the checks against a real Pi 4 and Pi 5
devices document (the discovery registry run over the fixture trees with the stand-in tools)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import yaml

from pi_stream_agent.config import ConfigError, validate
from pi_stream_agent.discovery.registry import describe_devices
from pi_stream_agent.rootfs import Root
from pi_stream_agent.soc import hardware_h264_encoder
from pi_stream_agent.streams.fields import FOURCC_TO_INPUT, format_bitrate, parse_bitrate
from pi_stream_agent.streams.fit import rate_matches, size_matches, validate_streams
from pi_stream_agent.streams.model import SourceConfig, StreamConfig, SubstreamConfig
from pi_stream_agent.streams.problems import Problem, StreamConfigError, raise_for_errors
from pi_stream_agent.streams.schema import parse_stream, parse_streams
from pi_stream_agent.streams.serialize import to_json
from pi_stream_agent.telemetry.board import decode_revision, parse_cpuinfo
from tests.agent.helpers import FixtureTree, fixture_text
from tests.agent.pi_trees import build_pi4_with_card, build_pi5_with_card, install_standins
from tests.agent.test_discovery_v4l2 import CARD_FORMATS, META_FORMATS

PI4_CAMERAS = "v4l2/list_cameras_pi4_imx477_hq_2022_rpicam336.txt"
PI5_CAMERAS = "v4l2/list_cameras_pi5_imx708_plus_imx219_tabs.txt"
PI4_CPUINFO = "cpuinfo/pi4b_rev1.1_a03111_armv7l_4.19.txt"
CARD = "/dev/v4l/by-id/usb-534d_USB_Video-video-index0"
PI4_CARD_ID = "usb-0000:01:00.0-1.3"


def stream(**overrides: Any) -> dict[str, Any]:
    """A valid CSI stream mapping as a person writes it; ``overrides`` replace keys (None removes one)."""
    data: dict[str, Any] = {
        "id": "garage",
        "source": {"type": "csi", "camera": 0},
        "width": 1280,
        "height": 720,
        "fps": 30,
        "bitrate": "2M",
    }
    for key, value in overrides.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def card_stream(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": "hdmi", "source": {"type": "v4l2", "device": CARD, "input_format": "mjpeg"}}
    base.update(width=1920, height=1080)
    base.update(overrides)
    return stream(**base)


def messages(exc: pytest.ExceptionInfo[StreamConfigError]) -> list[str]:
    return [str(problem) for problem in exc.value.problems]


# ------------------------------------------------------------------------------------ devices documents


def _devices(tmp: Path, build: Any, cameras: str, card_node: str, meta_node: str) -> dict[str, Any]:
    """The registry's document for a fixture tree, with the v4l2-ctl and rpicam-hello stand-ins on PATH.

    The card's --list-formats-ext is test_discovery_v4l2's CARD_FORMATS: no MS2109 listing captured on a Pi
    exists (fixtures README "Gaps"), so it is built from v4l2-ctl's documented format strings."""
    tree = FixtureTree(tmp / "root")
    tree.base.mkdir()
    build(tree)
    bin_dir = install_standins(tmp / "bin", {"v4l2-ctl": "v4l2-ctl", "rpicam-hello": "rpicam-hello"})
    data = tmp / "v4l2-ctl-data"
    data.mkdir()
    (data / f"{card_node}.formats.txt").write_text(CARD_FORMATS)
    (data / f"{meta_node}.formats.txt").write_text(META_FORMATS)
    listing = tmp / "cameras.txt"
    listing.write_text(fixture_text(cameras), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", str(bin_dir))
        patch.setenv("V4L2_CTL_STANDIN_DIR", str(data))
        patch.setenv("RPICAM_STANDIN_OUTPUT", str(listing))
        return describe_devices(Root(tree.base))


@pytest.fixture(scope="module")
def pi4_devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _devices(tmp_path_factory.mktemp("pi4"), build_pi4_with_card, PI4_CAMERAS, "video2", "video3")


@pytest.fixture(scope="module")
def pi5_devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _devices(tmp_path_factory.mktemp("pi5"), build_pi5_with_card, PI5_CAMERAS, "video0", "video1")


@pytest.fixture(scope="module")
def pi4_board(pi4_devices: dict[str, Any]) -> dict[str, Any]:
    revision = decode_revision(parse_cpuinfo(fixture_text(PI4_CPUINFO)).revision)
    encoder = hardware_h264_encoder(pi4_devices["hardware_encoder"]["h264"], revision.soc)
    return {"soc": revision.soc, "hardware_h264_encoder": encoder}


@pytest.fixture(scope="module")
def pi5_board(pi5_devices: dict[str, Any]) -> dict[str, Any]:
    # d04170: the revision on the board line of vcgencmd/pi5_raspinfo_get_camera_not_registered.txt.
    revision = decode_revision("d04170")
    encoder = hardware_h264_encoder(pi5_devices["hardware_encoder"]["h264"], revision.soc)
    return {"soc": revision.soc, "hardware_h264_encoder": encoder}


def test_the_devices_documents_are_what_the_fixtures_say(
    pi4_devices: dict[str, Any],
    pi5_devices: dict[str, Any],
    pi4_board: dict[str, Any],
    pi5_board: dict[str, Any],
) -> None:
    assert pi4_board == {"soc": "BCM2711", "hardware_h264_encoder": True}
    assert pi5_board == {"soc": "BCM2712", "hardware_h264_encoder": False}
    (card,) = pi4_devices["capture_devices"]
    assert (card["id"], card["path"], card["stable_path"]) == (PI4_CARD_ID, "/dev/video2", CARD)
    assert [(c["index"], c["model"], c["sensor_width"]) for c in pi4_devices["csi_cameras"]] == [
        (0, "imx477", 4056)
    ]
    assert pi4_devices["hardware_encoder"]["h264"] is True
    assert pi4_devices["unavailable"] == {}
    assert [c["model"] for c in pi5_devices["csi_cameras"]] == ["imx708", "imx219"]
    assert pi5_devices["capture_devices"][0]["stable_path"] == CARD
    assert pi5_devices["hardware_encoder"]["h264"] is False


def check(
    streams: list[dict[str, Any]], devices: dict[str, Any], board: dict[str, Any], *, simulated: bool = False
) -> list[str]:
    """Every problem as text, warnings marked. Streams are parsed one by one, so the list rules are
    validate_streams' own (as when the store checks a list changed through the API)."""
    parsed = [parse_stream(data, index) for index, data in enumerate(streams)]
    problems = validate_streams(parsed, devices, board, simulated=simulated)
    for problem in problems:
        assert_plain(problem.message)
    return [("warning: " if not p.is_error else "") + str(p) for p in problems]


# A key path (substream.width, source.device; not e.g.), a list index, an id prefix or a backtick.
_INTERNAL = re.compile(r'streams\[|`|\b(?!e\.g\b)[a-z_]+\.[a-z_]+\b|\(id "')


def assert_plain(message: str) -> None:
    """A problem's message as a person reads it at the field: a sentence, without the config file's paths."""
    assert message[:1].isupper() and message.endswith("."), message
    assert not _INTERNAL.search(message), message


# --------------------------------------------------------------------------------------------- schema


def test_full_stream_parses_with_defaults() -> None:
    parsed = parse_stream(stream(substream={"width": 640, "height": 360, "fps": 15, "bitrate": "500k"}))
    assert parsed == StreamConfig(
        id="garage",
        source=SourceConfig(kind="csi", camera=0),
        width=1280,
        height=720,
        fps=30.0,
        bitrate=2_000_000,
        rtsp_path="garage",
        name=None,
        keyframe_interval_s=1.0,
        encoder="auto",
        enabled=True,
        substream=SubstreamConfig(width=640, height=360, fps=15.0, bitrate=500_000, rtsp_path="garage_sub"),
    )
    assert parsed.display_name == "garage"


def test_every_source_shape() -> None:
    assert parse_stream(stream(source={"type": "csi"})).source == SourceConfig("csi", camera=0)
    path = "/base/soc/i2c0mux/i2c@1/imx477@1a"
    assert parse_stream(stream(source={"type": "csi", "camera": path})).source.camera == path
    v4l2 = parse_stream(stream(source={"type": "v4l2", "device": CARD, "input_format": "MJPG"})).source
    assert v4l2 == SourceConfig("v4l2", device=CARD, input_format="mjpeg")  # a fourcc becomes ffmpeg's name
    by_id = parse_stream(stream(source={"type": "v4l2", "device": PI4_CARD_ID})).source
    assert (by_id.device, by_id.input_format) == (PI4_CARD_ID, None)
    assert parse_stream(stream(source={"type": "test"})).source == SourceConfig("test", pattern="testsrc2")
    smpte = parse_stream(stream(source={"type": "test", "pattern": "smptebars"})).source
    assert smpte.pattern == "smptebars"


@pytest.mark.parametrize(
    ("value", "bits"),
    [
        (2_000_000, 2_000_000),
        (1_500_000.0, 1_500_000),
        ("2M", 2_000_000),
        ("2m", 2_000_000),
        ("2.5M", 2_500_000),
        ("800k", 800_000),
        ("800K", 800_000),
        ("800 kbit/s", 800_000),
        ("2Mbps", 2_000_000),
        ("1500000", 1_500_000),
        ("50k", 50_000),
        ("50M", 50_000_000),
    ],
)
def test_bitrates(value: Any, bits: int) -> None:
    assert parse_bitrate(value) == bits


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "2X",
            'expected a bitrate (give bit/s as a number or with k or M, e.g. 2000000, "2M" or "800k"), got '
            "'2X'",
        ),
        (
            "fast",
            'expected a bitrate (give bit/s as a number or with k or M, e.g. 2000000, "2M" or "800k"), got '
            "'fast'",
        ),
        (
            "1_000k",
            'expected a bitrate (give bit/s as a number or with k or M, e.g. 2000000, "2M" or "800k"), got '
            "'1_000k'",
        ),
        (
            "inf",
            'expected a bitrate (give bit/s as a number or with k or M, e.g. 2000000, "2M" or "800k"), got '
            "'inf'",
        ),
        (
            True,
            'expected a bitrate (give bit/s as a number or with k or M, e.g. 2000000, "2M" or "800k"), got '
            "True",
        ),
        # Other scripts' digits pass str.isdigit() (and float()): they used to be taken (issue 13).
        (
            "\u0662M",  # ARABIC-INDIC DIGIT TWO
            'expected a bitrate (give bit/s as a number or with k or M, e.g. 2000000, "2M" or "800k"), got '
            "'\u0662M'",
        ),
        (
            "\u0968\u0966\u0966k",  # DEVANAGARI 200
            'expected a bitrate (give bit/s as a number or with k or M, e.g. 2000000, "2M" or "800k"), got '
            "'\u0968\u0966\u0966k'",
        ),
        ("60M", "must be between 50k and 50M bit/s, got 60M"),
        (10_000, "must be between 50k and 50M bit/s, got 10000"),
        (float("nan"), "must be between 50k and 50M bit/s, got nan"),
    ],
)
def test_bad_bitrates(value: Any, message: str) -> None:
    with pytest.raises(vol.Invalid) as exc:
        parse_bitrate(value)
    assert exc.value.msg == message


def test_format_bitrate() -> None:
    assert [format_bitrate(b) for b in (2_000_000, 800_000, 1_500_000, 123)] == ["2M", "800k", "1500k", "123"]


def test_every_field_error_at_once_with_the_stream_index_when_the_id_is_bad() -> None:
    bad = {
        "id": "Garage",
        "source": {"type": "usb"},
        "width": 1281,
        "height": "720",
        "fps": 0,
        "bitrate": "2X",
        "keyframe_interval_s": 20,
        "encoder": "gpu",
        "rtsp_path": "/cam 1",
        "enabled": "yes",
        "fsp": 30,
    }
    with pytest.raises(StreamConfigError) as exc:
        parse_stream(bad, 1)
    hint = 'give bit/s as a number or with k or M, e.g. 2000000, "2M" or "800k"'
    assert messages(exc) == [
        "streams[1]: id: must be 1 to 32 characters of lowercase letters, digits, _ and -, starting with a "
        "letter or digit (e.g. garage or cam-1), got 'Garage'",
        "streams[1]: source.type: expected csi (a camera on the ribbon connector), v4l2 (a USB capture card "
        "or "
        "webcam) or test (a generated test pattern), got 'usb'",
        "streams[1]: width: must be an even number of pixels (4:2:0 video), got 1281; use 1280",
        "streams[1]: height: expected a whole number of pixels (e.g. 720), got '720'",
        "streams[1]: fps: must be between 1 and 120 frames per second, got 0",
        f"streams[1]: bitrate: expected a bitrate ({hint}), got '2X'",
        "streams[1]: keyframe_interval_s: must be between 0.2 and 10 seconds, got 20",
        "streams[1]: encoder: expected auto (hardware H.264 where the Pi has it), hardware, software "
        "(libx264) "
        "or copy (pass a capture card's MJPEG/H.264 through), got 'gpu'",
        "streams[1]: rtsp_path: must be URL path segments of letters, digits, . _ ~ and - separated by / (no "
        "leading or trailing /, no spaces), got '/cam 1'",
        "streams[1]: enabled: expected true or false, got 'yes'",
        "streams[1]: fsp: unknown key for a stream (check the spelling; it takes id, name, source, width, "
        "height, fps, bitrate, keyframe_interval_s, encoder, rtsp_path, enabled, substream, settings, "
        "v4l2_controls, audio, motion_region)",
    ]
    assert all(p.index == 1 and p.stream_id == "Garage" for p in exc.value.problems)


def test_missing_keys_say_what_to_write() -> None:
    with pytest.raises(StreamConfigError) as exc:
        parse_stream({"id": "porch"}, 0)
    assert messages(exc) == [
        'streams[0] (id "porch"): source: required: type csi (a camera on the ribbon connector), v4l2 (a USB '
        "capture card or webcam) or test (a generated test pattern), e.g. {type: csi, camera: 0}",
        'streams[0] (id "porch"): width: required: the width in pixels (e.g. 1280)',
        'streams[0] (id "porch"): height: required: the height in pixels (e.g. 720)',
        'streams[0] (id "porch"): fps: required: the frame rate (e.g. 30)',
        'streams[0] (id "porch"): bitrate: required: the bitrate in bit/s (e.g. 2M)',
    ]
    with pytest.raises(StreamConfigError) as exc:
        parse_stream(stream(id=None))
    assert messages(exc) == [
        "stream: id: required: an id of lowercase letters, digits, _ and - (e.g. garage)"
    ]


def test_source_errors() -> None:
    cases = [
        (
            {"camera": 0},
            "source.type: required: csi (a camera on the ribbon connector), v4l2 (a USB capture "
            "card or webcam) or test (a generated test pattern)",
        ),
        (
            "csi",
            "source: expected a mapping such as {type: csi, camera: 0} or {type: v4l2, device: "
            "/dev/v4l/by-id/…}, got 'csi'",
        ),
        (
            {"type": "csi", "camera": -1},
            "source.camera: expected a camera index (0, 1 … as rpicam-hello "
            "--list-cameras numbers them) or a libcamera id path such as /base/soc/i2c0mux/i2c@1/imx708@1a, "
            "got -1",
        ),
        (
            {"type": "csi", "device": CARD},
            "source.device: unknown key for a csi source (check the spelling; it takes type, camera)",
        ),
        (
            {"type": "v4l2"},
            "source.device: required: the card's stable path (stable_path in GET "
            "/api/v1/devices, e.g. /dev/v4l/by-id/usb-…-video-index0) or its device id",
        ),
        (
            {"type": "v4l2", "device": "/dev/../etc/passwd"},
            "source.device: expected a device path "
            "(/dev/v4l/by-id/…, which survives reboots, or /dev/videoN) or a device id from GET "
            "/api/v1/devices, "
            "got '/dev/../etc/passwd'",
        ),
        (
            {"type": "v4l2", "device": CARD, "input_format": "avi"},
            "source.input_format: expected one of "
            "mjpeg, h264, yuyv422, uyvy422, nv12, yuv420p, rgb24, bgr24 (ffmpeg's names; or leave it out), "
            "got 'avi'",
        ),
        (
            {"type": "test", "pattern": "rainbow"},
            "source.pattern: expected one of testsrc2, testsrc, smptebars, "
            "smptehdbars, pal75bars, pal100bars, rgbtestsrc, yuvtestsrc, mandelbrot, life, passerby, "
            "got 'rainbow'",
        ),
    ]
    for source, message in cases:
        with pytest.raises(StreamConfigError) as exc:
            parse_stream(stream(source=source), 2)
        assert messages(exc) == [f'streams[2] (id "garage"): {message}'], source


def test_substream_rules() -> None:
    with pytest.raises(StreamConfigError) as exc:
        parse_stream(stream(substream={"width": 1280, "height": 1080, "fps": 60, "bitrate": "1M"}), 1)
    assert messages(exc) == [
        'streams[1] (id "garage"): substream.width: must be smaller than the main width (1280), got 1280',
        'streams[1] (id "garage"): substream.height: must be smaller than the main height (720), got 1080',
        'streams[1] (id "garage"): substream.fps: must be at most the main fps (30), got 60',
    ]
    with pytest.raises(StreamConfigError) as exc:
        parse_stream(stream(substream={"width": 640, "heigth": 360}), 1)
    assert messages(exc) == [
        'streams[1] (id "garage"): substream.height: required: the substream\'s height in pixels (e.g. 360)',
        'streams[1] (id "garage"): substream.fps: required: the substream\'s frame rate (e.g. 15)',
        'streams[1] (id "garage"): substream.bitrate: required: the substream\'s bitrate (e.g. 500k)',
        'streams[1] (id "garage"): substream.heigth: unknown key for a substream (check the spelling; it '
        "takes "
        "width, height, fps, bitrate, rtsp_path, audio)",
    ]
    custom = parse_stream(
        stream(
            substream={"width": 640, "height": 360, "fps": 30, "bitrate": 600_000, "rtsp_path": "low/garage"}
        )
    )
    assert custom.substream == SubstreamConfig(640, 360, 30.0, 600_000, "low/garage")


def test_copy_rules() -> None:
    cases = [
        (
            stream(encoder="copy"),
            "encoder: copy passes a capture card's MJPEG/H.264 through, and a CSI camera "
            "has none to pass; use auto, hardware or software",
        ),
        (
            stream(encoder="copy", source={"type": "test"}),
            "encoder: copy passes a capture card's MJPEG/H.264 "
            "through, and a test pattern has none to pass; use auto, hardware or software",
        ),
        (
            card_stream(encoder="copy", source={"type": "v4l2", "device": CARD}),
            "encoder: copy needs the card's "
            "compressed stream, but no input_format is set: set source.input_format to mjpeg or h264 (one "
            "the card "
            "offers), or use encoder auto",
        ),
        (
            card_stream(encoder="copy", source={"type": "v4l2", "device": CARD, "input_format": "yuyv422"}),
            "encoder: copy needs the card's compressed stream, but yuyv422 is raw video: set "
            "source.input_format to "
            "mjpeg or h264 (one the card offers), or use encoder auto",
        ),
    ]
    for data, message in cases:
        with pytest.raises(StreamConfigError) as exc:
            parse_stream(data, 0)
        assert messages(exc) == [f'streams[0] (id "{data["id"]}"): {message}']
    assert parse_stream(card_stream(encoder="copy")).encoder == "copy"
    assert (
        parse_stream(
            card_stream(encoder="copy", source={"type": "v4l2", "device": CARD, "input_format": "h264"})
        ).encoder
        == "copy"
    )


def test_rtsp_path_and_name_rules() -> None:
    assert parse_stream(stream(rtsp_path="cams/garage.main~1")).rtsp_path == "cams/garage.main~1"
    for path in ("cams//garage", "cams/", "../garage", "a?b", "x" * 65):
        with pytest.raises(StreamConfigError):
            parse_stream(stream(rtsp_path=path))
    assert parse_stream(stream(name="Garage door")).display_name == "Garage door"
    with pytest.raises(StreamConfigError) as exc:
        parse_stream(stream(name="two\nlines"))
    assert messages(exc) == [
        'stream "garage": name: expected a name of 1 to 64 printable characters (or leave it out), got '
        "'two\\nlines'"
    ]


def test_not_a_mapping_and_not_a_list() -> None:
    with pytest.raises(StreamConfigError) as exc:
        parse_streams(["garage"])
    assert messages(exc) == ["streams[0]: expected a mapping of keys such as id:, source:, width: …, got str"]
    with pytest.raises(StreamConfigError) as exc:
        parse_streams({"id": "garage"})
    assert messages(exc) == ["streams: expected a list of streams (each starting with - id: …), got dict"]
    assert parse_streams(None) == []


def test_list_rules_duplicates_and_shared_sources() -> None:
    data = [
        stream(substream={"width": 640, "height": 360, "fps": 15, "bitrate": "500k"}),
        stream(id="garage_sub", source={"type": "test"}),  # its default path is garage's substream path
        stream(source={"type": "test"}, rtsp_path="yard"),  # the id again
        stream(id="porch", rtsp_path="garage"),  # CSI camera 0 again, and garage's path
        stream(
            id="loop",
            source={"type": "test"},
            substream={"width": 640, "height": 360, "fps": 15, "bitrate": "500k", "rtsp_path": "loop"},
        ),
        "not a stream",
        stream(id="yard2", source={"type": "test"}, rtsp_path="yard"),  # after a broken item: index still 6
    ]
    with pytest.raises(StreamConfigError) as exc:
        parse_streams(data)
    assert messages(exc) == [
        "streams[5]: expected a mapping of keys such as id:, source:, width: …, got str",
        'streams[1] (id "garage_sub"): rtsp_path: "garage_sub" is already the path of the substream of '
        'streams[0] (id "garage"); choose another',
        'streams[2] (id "garage"): id: "garage" is already the id of streams[0]; every stream needs its own '
        "id",
        'streams[3] (id "porch"): rtsp_path: "garage" is already the path of the main stream of streams[0] '
        '(id "garage"); choose another',
        'streams[3] (id "porch"): source: CSI camera 0 already feeds streams[0] (id "garage"); a camera or '
        "card "
        'can feed one stream only: give "garage" a substream instead',
        'streams[4] (id "loop"): substream.rtsp_path: "loop" is already the path of this stream\'s main '
        "stream; "
        "choose another",
        'streams[6] (id "yard2"): rtsp_path: "yard" is already the path of the main stream of streams[2] '
        '(id "garage"); choose another',
    ]


def test_test_sources_never_conflict() -> None:
    streams = parse_streams(
        [stream(id="a", source={"type": "test"}), stream(id="b", source={"type": "test"})]
    )
    assert [s.rtsp_path for s in streams] == ["a", "b"]


# --------------------------------------------------------------------------------------------- JSON form


def _examples() -> list[StreamConfig]:
    return parse_streams(
        [
            stream(
                name="Garage",
                keyframe_interval_s=0.5,
                enabled=False,
                substream={"width": 640, "height": 360, "fps": 15, "bitrate": "500k"},
            ),
            card_stream(encoder="copy", fps=29.97, bitrate=4_000_000, rtsp_path="cams/hdmi"),
            stream(id="pattern", source={"type": "test", "pattern": "smptebars"}, encoder="software"),
            stream(id="webcam", source={"type": "v4l2", "device": "/dev/video0"}, encoder="hardware"),
        ]
    )


def test_to_json_round_trips_exactly() -> None:
    for parsed in _examples():
        document = to_json(parsed)
        assert parse_stream(document) == parsed
        assert parse_stream(json.loads(json.dumps(document))) == parsed
        assert parse_stream(yaml.safe_load(yaml.safe_dump(document))) == parsed
        assert to_json(parse_stream(document)) == document


def test_to_json_shape() -> None:
    garage, hdmi, pattern, webcam = (to_json(s) for s in _examples())
    assert garage == {
        "id": "garage",
        "name": "Garage",
        "source": {"type": "csi", "camera": 0},
        "width": 1280,
        "height": 720,
        "fps": 30.0,
        "bitrate": 2_000_000,
        "keyframe_interval_s": 0.5,
        "encoder": "auto",
        "rtsp_path": "garage",
        "enabled": False,
        "substream": {
            "width": 640,
            "height": 360,
            "fps": 15.0,
            "bitrate": 500_000,
            "rtsp_path": "garage_sub",
            "audio": False,
        },
        "settings": {},
        "v4l2_controls": {},
        "audio": None,
        "motion_region": None,
    }
    assert hdmi["source"] == {"type": "v4l2", "device": CARD, "input_format": "mjpeg"}
    assert (hdmi["fps"], hdmi["bitrate"], hdmi["substream"]) == (29.97, 4_000_000, None)
    assert pattern["source"] == {"type": "test", "pattern": "smptebars"}
    assert webcam["source"] == {"type": "v4l2", "device": "/dev/video0", "input_format": None}
    assert all(isinstance(doc["bitrate"], int) for doc in (garage, hdmi, pattern, webcam))


# ------------------------------------------------------------------------------- voluptuous for config.py


def test_streams_section_of_the_config_file() -> None:
    """The config file's streams: is checked by the same schema, with the stream named in each line."""
    checked = validate({"streams": [stream(bitrate="800k")]})
    assert checked.streams == (to_json(parse_stream(stream(bitrate="800k"))),)
    assert checked.streams[0]["bitrate"] == 800_000
    assert validate({}).streams is None
    assert validate({"streams": None}).streams == ()
    substream = {"width": 1280, "height": 360, "fps": 15, "bitrate": "1M"}
    with pytest.raises(ConfigError) as exc:
        validate({"streams": [stream(), stream(id="b", substream=substream)]})
    assert str(exc.value) == (
        "invalid configuration:\n"
        '  streams[1] (id "b"): substream.width: must be smaller than the main width (1280), got 1280'
    )
    # ...and streams[1] (id "b") also shares camera 0 with streams[0]: reported once the stream parses.
    with pytest.raises(ConfigError) as exc:
        validate({"streams": [stream(), stream(id="b")]})
    assert (
        str(exc.value).splitlines()[1].startswith('  streams[1] (id "b"): source: CSI camera 0 already feeds')
    )


# ------------------------------------------------------------------------------- against a real Pi 4


def test_pi4_valid_setup_has_no_problem(pi4_devices: dict[str, Any], pi4_board: dict[str, Any]) -> None:
    streams = [
        stream(substream={"width": 640, "height": 360, "fps": 15, "bitrate": "500k"}),
        card_stream(encoder="copy"),
        stream(id="pattern", source={"type": "test"}, width=320, height=240, fps=15, bitrate="300k"),
    ]
    assert check(streams, pi4_devices, pi4_board) == []


def test_pi4_csi_modes(pi4_devices: dict[str, Any], pi4_board: dict[str, Any]) -> None:
    # imx477 modes (2022 capture): 1332x990 120.05, 2028x1080 50.03, 2028x1520 40.01, 4056x3040 10.00 fps.
    assert check([stream(width=1920, height=1080, fps=50)], pi4_devices, pi4_board) == []
    assert check([stream(width=1332, height=990, fps=120)], pi4_devices, pi4_board) == []
    assert check([stream(fps=120)], pi4_devices, pi4_board) == []  # 1280x720 from the 1332x990 mode
    assert check([stream(width=1920, height=1080, fps=60)], pi4_devices, pi4_board) == [
        'streams[0] (id "garage"): fps: imx477 delivers 1920x1080 at up to 50.03 fps (sensor mode '
        "2028x1080): "
        "lower fps to 50, or use a size of at most 1332x990 (up to 120.05 fps)"
    ]
    assert check([stream(width=1920, height=1440, fps=45)], pi4_devices, pi4_board) == [
        'streams[0] (id "garage"): fps: imx477 delivers 1920x1440 at up to 40.01 fps (sensor mode '
        "2028x1520): "
        "lower fps to 40, or use a size of at most 2028x1080 (up to 50.03 fps)"
    ]
    assert check([stream(width=4096, height=3072, fps=10, encoder="software")], pi4_devices, pi4_board) == [
        'streams[0] (id "garage"): width: imx477\'s sensor is 4056x3040: use a width of at most 4056',
        'streams[0] (id "garage"): height: imx477\'s sensor is 4056x3040: use a height of at most 3040',
    ]


def test_pi4_csi_camera_presence(pi4_devices: dict[str, Any], pi4_board: dict[str, Any]) -> None:
    assert (
        check(
            [stream(source={"type": "csi", "camera": "/base/soc/i2c0mux/i2c@1/imx477@1a"})],
            pi4_devices,
            pi4_board,
        )
        == []
    )
    assert check([stream(source={"type": "csi", "camera": 1})], pi4_devices, pi4_board) == [
        'streams[0] (id "garage"): source.camera: libcamera lists no camera 1 (cameras: 0 (imx477)); check '
        "the "
        "ribbon cable and rpicam-hello --list-cameras, or use a listed camera"
    ]
    no_listing = {
        **pi4_devices,
        "csi_cameras": [],
        "unavailable": {"csi_cameras": "rpicam-hello or libcamera-hello not found on PATH"},
    }
    assert check([stream(source={"type": "csi", "camera": 1})], no_listing, pi4_board) == [
        'warning: streams[0] (id "garage"): source.camera: not checked: CSI cameras could not be listed '
        "(rpicam-hello or libcamera-hello not found on PATH)"
    ]
    nothing = {**pi4_devices, "csi_cameras": []}  # listed fine: "No cameras available!"
    assert check([stream()], nothing, pi4_board) == [
        'streams[0] (id "garage"): source.camera: libcamera lists no camera 0 (cameras: none); check the '
        "ribbon "
        "cable and rpicam-hello --list-cameras, or use a listed camera"
    ]


def test_one_camera_one_stream_after_resolving(
    pi4_devices: dict[str, Any], pi4_board: dict[str, Any]
) -> None:
    streams = [
        stream(),
        stream(id="garage2", source={"type": "csi", "camera": "/base/soc/i2c0mux/i2c@1/imx477@1a"}),
        card_stream(),
        card_stream(id="hdmi2", source={"type": "v4l2", "device": PI4_CARD_ID, "input_format": "mjpeg"}),
    ]
    assert check(streams, pi4_devices, pi4_board) == [
        'streams[1] (id "garage2"): source: CSI camera 0 (imx477) already feeds streams[0] (id "garage"); a '
        'camera or card can feed one stream only: give "garage" a substream instead',
        'streams[3] (id "hdmi2"): source: capture device usb-0000:01:00.0-1.3 (USB Video) already feeds '
        'streams[2] (id "hdmi"); a camera or card can feed one stream only: give "hdmi" a substream instead',
    ]


def test_pi4_card_modes(pi4_devices: dict[str, Any], pi4_board: dict[str, Any]) -> None:
    # CARD_FORMATS: MJPG 1920x1080 30/25, 1280x720 60/30; YUYV 1920x1080 5, 640x480 30.
    assert check([card_stream(fps=25)], pi4_devices, pi4_board) == []
    assert check([card_stream(width=1280, height=720, fps=60)], pi4_devices, pi4_board) == []
    assert check([card_stream(fps=29.97)], pi4_devices, pi4_board) == []  # within 1 % of 30
    assert check([card_stream(fps=60)], pi4_devices, pi4_board) == [
        'streams[0] (id "hdmi"): fps: the card (USB Video) offers 1920x1080 in mjpeg at 30, 25 fps only; use '
        "one "
        "of those"
    ]
    assert check([card_stream(width=1600, height=900)], pi4_devices, pi4_board) == [
        'streams[0] (id "hdmi"): width/height: the card (USB Video) does not offer 1600x900 in mjpeg; it '
        "offers "
        "1920x1080, 1280x720"
    ]
    yuyv = {"type": "v4l2", "device": CARD, "input_format": "yuyv422"}
    assert check([card_stream(source=yuyv)], pi4_devices, pi4_board) == [
        'streams[0] (id "hdmi"): fps: the card (USB Video) offers 1920x1080 in yuyv422 at 5 fps only; use '
        "one of "
        "those"
    ]
    h264 = {"type": "v4l2", "device": CARD, "input_format": "h264"}
    assert check([card_stream(source=h264, encoder="copy")], pi4_devices, pi4_board) == [
        'streams[0] (id "hdmi"): source.input_format: the card (USB Video) does not offer h264; it offers '
        "mjpeg "
        "(MJPG), yuyv422 (YUYV)"
    ]
    any_format = {"type": "v4l2", "device": CARD}
    assert check([card_stream(source=any_format, width=640, height=480)], pi4_devices, pi4_board) == []
    assert check([card_stream(source=any_format, width=800, height=600)], pi4_devices, pi4_board) == [
        'streams[0] (id "hdmi"): width/height: the card (USB Video) does not offer 800x600 in any format; it '
        "offers 1920x1080, 1280x720, 640x480"
    ]


def choose_input_format(device: Mapping[str, Any], stream: StreamConfig) -> str | None:
    """The ffmpeg -input_format a v4l2 stream would take from a card: the configured one, else the first
    compressed format (less USB bandwidth) that offers the stream's size at its fps, else the first raw one;
    None when the card offers no match. (Only these tests choose: the publisher lets ffmpeg pick.)"""
    if stream.source.input_format is not None:
        return stream.source.input_format
    candidates = [
        fmt
        for fmt in device.get("formats") or []
        if isinstance(fmt, Mapping)
        and fmt.get("fourcc") in FOURCC_TO_INPUT
        and any(
            size_matches(size, stream.width, stream.height) and rate_matches(size, stream.fps)
            for size in fmt.get("sizes") or []
            if isinstance(size, Mapping)
        )
    ]
    candidates.sort(key=lambda fmt: not fmt.get("compressed"))
    return FOURCC_TO_INPUT[candidates[0]["fourcc"]] if candidates else None


def test_choose_input_format(pi4_devices: dict[str, Any]) -> None:
    card = pi4_devices["capture_devices"][0]
    any_format = {"type": "v4l2", "device": CARD}
    assert (
        choose_input_format(card, parse_stream(card_stream(source=any_format))) == "mjpeg"
    )  # compressed first
    assert (
        choose_input_format(card, parse_stream(card_stream(source=any_format, width=640, height=480)))
        == "yuyv422"
    )
    assert choose_input_format(card, parse_stream(card_stream(source=any_format, fps=5))) == "yuyv422"
    assert (
        choose_input_format(card, parse_stream(card_stream(source=any_format, width=800, height=600))) is None
    )
    assert choose_input_format(card, parse_stream(card_stream())) == "mjpeg"  # configured: as is


def test_stepwise_sizes_and_rates() -> None:
    # A webcam with a continuous size range; v4l2-ctl prints such ranges as "Stepwise 16x16 - 1920x1080 with
    # step 1/1" and "Stepwise 0.033s - 1.000s with step 0.033s (1.000-30.000 fps)" (the parser's documented
    # formats), which the registry turns into this JSON.
    device = {
        "id": "usb-webcam",
        "name": "Webcam",
        "path": "/dev/video0",
        "stable_path": None,
        "formats": [
            {
                "fourcc": "YUYV",
                "description": "YUYV 4:2:2",
                "compressed": False,
                "sizes": [
                    {"width": 1920, "height": 1080, "fps": [30.0, 1.0], "min_width": 16, "min_height": 16}
                ],
            }
        ],
    }
    devices = {
        "capture_devices": [device],
        "csi_cameras": [],
        "hardware_encoder": {"h264": True},
        "platform_nodes": [],
        "unavailable": {},
    }
    board = {"soc": "BCM2711", "hardware_h264_encoder": True}
    webcam = {"type": "v4l2", "device": "usb-webcam"}
    assert check([card_stream(source=webcam, width=800, height=600, fps=12)], devices, board) == []
    assert check([card_stream(source=webcam, width=800, height=600, fps=60)], devices, board) == [
        'streams[0] (id "hdmi"): fps: the card (Webcam) offers 800x600 in any format at 30, 1 fps only; use '
        "one of "
        "those"
    ]


def test_pi4_v4l2_device_presence(pi4_devices: dict[str, Any], pi4_board: dict[str, Any]) -> None:
    assert (
        check(
            [card_stream(source={"type": "v4l2", "device": PI4_CARD_ID, "input_format": "mjpeg"})],
            pi4_devices,
            pi4_board,
        )
        == []
    )
    assert check(
        [card_stream(source={"type": "v4l2", "device": "/dev/video2", "input_format": "mjpeg"})],
        pi4_devices,
        pi4_board,
    ) == [
        f'warning: streams[0] (id "hdmi"): source.device: /dev/video2 may be renumbered after a reboot or '
        f"replug; use {CARD}"
    ]
    # Unplugged right now: accepted, the stream waits for it.
    other = "/dev/v4l/by-id/usb-MACROSILICON_USB3.0_Video_26241327-video-index0"
    problems = validate_streams(
        parse_streams([card_stream(source={"type": "v4l2", "device": other})]),
        pi4_devices,
        pi4_board,
        simulated=False,
    )
    assert [str(p) for p in problems] == [
        f'streams[0] (id "hdmi"): source.device: {other} is not connected right now; the stream waits for it '
        "and starts when it appears"
    ]
    assert raise_for_errors(problems) == problems  # warnings only: the configuration is accepted
    assert check([card_stream(source={"type": "v4l2", "device": "/dev/video5"})], pi4_devices, pi4_board) == [
        'warning: streams[0] (id "hdmi"): source.device: /dev/video5 is not connected right now; the stream '
        "waits for it and starts when it appears; /dev/videoN numbers change between boots: use its stable "
        "path "
        "from GET /api/v1/devices"
    ]
    # The Pi's own nodes are never capture sources.
    assert check([card_stream(source={"type": "v4l2", "device": "/dev/video0"})], pi4_devices, pi4_board) == [
        'streams[0] (id "hdmi"): source.device: /dev/video0 is the Pi\'s own unicam-image (csi_receiver), '
        "not a "
        "capture card; a camera on the ribbon connector is source type csi"
    ]
    assert check(
        [card_stream(source={"type": "v4l2", "device": "/dev/video11"})], pi4_devices, pi4_board
    ) == [
        'streams[0] (id "hdmi"): source.device: /dev/video11 is the Pi\'s own bcm2835-codec-encode '
        "(h264_encoder), not a capture card; a camera on the ribbon connector is source type csi"
    ]


def test_unreadable_device_lists_are_warnings(pi4_board: dict[str, Any]) -> None:
    devices = {
        "capture_devices": [],
        "csi_cameras": [],
        "hardware_encoder": {"h264": None},
        "platform_nodes": [],
        "unavailable": {"capture_devices": "/sys/class/video4linux not found"},
    }
    assert check([card_stream()], devices, pi4_board) == [
        'warning: streams[0] (id "hdmi"): source.device: not checked: capture devices could not be listed '
        "(/sys/class/video4linux not found)"
    ]
    card_without_formats = {
        "capture_devices": [
            {
                "id": PI4_CARD_ID,
                "name": "USB Video",
                "path": "/dev/video2",
                "stable_path": CARD,
                "formats": [],
            }
        ],
        "csi_cameras": [],
        "hardware_encoder": {"h264": True},
        "platform_nodes": [],
        "unavailable": {"formats": "v4l2-ctl not found on PATH (install v4l-utils for formats and bus info)"},
    }
    assert check([card_stream()], card_without_formats, pi4_board) == [
        'warning: streams[0] (id "hdmi"): width/height: not checked: formats unavailable (v4l2-ctl not found '
        "on "
        "PATH (install v4l-utils for formats and bus info))"
    ]


def test_pi4_hardware_encoder_size_limit(pi4_devices: dict[str, Any], pi4_board: dict[str, Any]) -> None:
    big = {"width": 2560, "height": 1440, "fps": 10}
    assert check([stream(**big)], pi4_devices, pi4_board) == [
        'streams[0] (id "garage"): width/height: the Pi\'s hardware H.264 encoder (auto picks it on this '
        "board) "
        "takes at most 1920x1920, got 2560x1440: lower the size, or use encoder software"
    ]
    assert check([stream(encoder="hardware", **big)], pi4_devices, pi4_board) == [
        'streams[0] (id "garage"): width/height: the Pi\'s hardware H.264 encoder takes at most 1920x1920, '
        "got "
        "2560x1440: lower the size, or use encoder software"
    ]
    assert check([stream(encoder="software", **big)], pi4_devices, pi4_board) == []
    assert check([stream(encoder="hardware", width=1920, height=1080)], pi4_devices, pi4_board) == []


def test_simulation_downgrades_device_problems(
    pi4_devices: dict[str, Any], pi4_board: dict[str, Any]
) -> None:
    streams = [
        stream(source={"type": "csi", "camera": 1}),
        card_stream(fps=60),
        stream(id="dup", source={"type": "test"}, rtsp_path="garage"),
    ]
    assert check(streams, pi4_devices, pi4_board, simulated=True) == [
        'warning: streams[0] (id "garage"): source.camera: libcamera lists no camera 1 (cameras: 0 '
        "(imx477)); "
        "check the ribbon cable and rpicam-hello --list-cameras, or use a listed camera (simulation mode: "
        "not "
        "enforced)",
        'warning: streams[1] (id "hdmi"): fps: the card (USB Video) offers 1920x1080 in mjpeg at 30, 25 fps '
        "only; "
        "use one of those (simulation mode: not enforced)",
        # Structure is never simulated.
        'streams[2] (id "dup"): rtsp_path: "garage" is already the path of the main stream of streams[0] (id '
        '"garage"); choose another',
    ]


# ------------------------------------------------------------------------------- against a real Pi 5


def test_pi5_hardware_encoder_refused(pi5_devices: dict[str, Any], pi5_board: dict[str, Any]) -> None:
    problems = check([stream(encoder="hardware")], pi5_devices, pi5_board)
    assert problems == [
        'streams[0] (id "garage"): encoder: this board (BCM2712) has no hardware H.264 encoder (a Pi 5 '
        "encodes "
        "in software): use auto or software"
    ]
    # The agent's answer from the node scan alone (SoC unknown) is enough to know.
    node = pi5_devices["hardware_encoder"]["h264"]
    scan_only = {"hardware_h264_encoder": hardware_h264_encoder(node, None)}
    assert check([stream(encoder="hardware")], pi5_devices, scan_only) == [
        'streams[0] (id "garage"): encoder: this board has no hardware H.264 encoder (a Pi 5 encodes in '
        "software): use auto or software"
    ]
    assert check([stream(encoder="software")], pi5_devices, pi5_board) == []
    # copy from the card needs no encoder at all.
    assert check([card_stream(encoder="copy")], pi5_devices, pi5_board) == []


def test_pi5_auto_warns_about_software_cost(pi5_devices: dict[str, Any], pi5_board: dict[str, Any]) -> None:
    assert check([stream(width=2304, height=1296, fps=30)], pi5_devices, pi5_board) == [
        'warning: streams[0] (id "garage"): encoder: this board has no hardware H.264 encoder: 2304x1296 at '
        "30 "
        "fps is encoded in software (libx264), which costs much CPU; keep the size and fps modest"
    ]


def test_pi5_two_cameras_and_modes(pi5_devices: dict[str, Any], pi5_board: dict[str, Any]) -> None:
    # imx708: 1536x864 120.13, 2304x1296 56.03, 4608x2592 14.35; imx219: 640x480 206.65 … 3280x2464 21.19.
    streams = [
        stream(
            id="front",
            source={"type": "csi", "camera": 0},
            width=1536,
            height=864,
            fps=120,
            encoder="software",
        ),
        stream(
            id="back",
            source={"type": "csi", "camera": "/base/axi/pcie@1000120000/rp1/i2c@70000/imx219@10"},
            width=1640,
            height=1232,
            fps=80,
            encoder="software",
        ),
    ]
    assert check(streams, pi5_devices, pi5_board) == []  # 80 fps fits imx219's SRGGB8 1640x1232 mode (83.70)
    streams[1]["fps"] = 90
    assert check(streams, pi5_devices, pi5_board) == [
        'streams[1] (id "back"): fps: imx219 delivers 1640x1232 at up to 83.7 fps (sensor mode 1640x1232): '
        "lower fps to 83, or use a size of at most 640x480 (up to 206.65 fps)"
    ]
    too_fast = stream(id="front", width=1920, height=1080, fps=60, encoder="software")
    assert check([too_fast], pi5_devices, pi5_board) == [
        'streams[0] (id "front"): fps: imx708 delivers 1920x1080 at up to 56.03 fps (sensor mode 2304x1296): '
        "lower fps to 56, or use a size of at most 1536x864 (up to 120.13 fps)"
    ]


# ----------------------------------------------------------------------------------------- odd input


def test_malformed_devices_documents_do_not_raise() -> None:
    parsed = parse_streams([stream(), card_stream()])
    for devices in (
        {},
        {"capture_devices": None, "csi_cameras": None, "unavailable": None},
        {
            "capture_devices": ["x", 3],
            "csi_cameras": [{"index": 0, "modes": [None, {"width": "x"}]}],
            "hardware_encoder": "yes",
            "platform_nodes": [None],
        },
    ):
        problems = validate_streams(parsed, devices, {}, simulated=False)
        assert all(isinstance(p, Problem) for p in problems)


def test_problem_text_and_error() -> None:
    error = Problem('streams[0] (id "a")', "fps", "too fast")
    warning = Problem('streams[0] (id "a")', "", "just so you know", "warning")
    exc = StreamConfigError([error, warning])
    assert str(exc) == 'invalid stream configuration:\n  streams[0] (id "a"): fps: too fast'
    assert exc.problems == [error]
    assert exc.warnings == [warning]
    assert str(warning) == 'streams[0] (id "a"): just so you know'
    assert raise_for_errors([warning]) == [warning]
    with pytest.raises(StreamConfigError):
        raise_for_errors([warning, error])
