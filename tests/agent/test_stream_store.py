"""StreamStore: seed vs streams.yaml, atomic writes with a backup, broken files, all-or-nothing upsert and
remove."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from pi_stream_agent.streams.fit import validate_streams
from pi_stream_agent.streams.model import StreamConfig
from pi_stream_agent.streams.problems import Problem, StreamConfigError
from pi_stream_agent.streams.schema import parse_stream
from pi_stream_agent.streams.store import (
    HEADER,
    StreamNotFoundError,
    StreamStore,
    StreamStoreError,
    dump_streams,
    to_json,
)

CARD = "/dev/v4l/by-id/usb-534d_USB_Video-video-index0"

GARAGE: dict[str, Any] = {
    "id": "garage",
    "name": "Garage",
    "source": {"type": "csi", "camera": 0},
    "width": 1280,
    "height": 720,
    "fps": 30,
    "bitrate": "2M",
    "substream": {"width": 640, "height": 360, "fps": 15, "bitrate": "500k"},
}
HDMI: dict[str, Any] = {
    "id": "hdmi",
    "source": {"type": "v4l2", "device": CARD, "input_format": "mjpeg"},
    "width": 1920,
    "height": 1080,
    "fps": 30,
    "bitrate": 4_000_000,
    "encoder": "copy",
}
PATTERN: dict[str, Any] = {
    "id": "pattern",
    "source": {"type": "test"},
    "width": 320,
    "height": 240,
    "fps": 15,
    "bitrate": "300k",
}

# A Pi 4 as the registry describes it (the shapes of tests/agent/test_stream_config.py's documents, cut down
# to what these tests need): imx477 camera 0, the USB card, the bcm2835-codec encoder.
PI4_DEVICES: dict[str, Any] = {
    "capture_devices": [
        {
            "id": "usb-0000:01:00.0-1.3",
            "name": "USB Video",
            "path": "/dev/video2",
            "stable_path": CARD,
            "formats": [
                {
                    "fourcc": "MJPG",
                    "compressed": True,
                    "sizes": [{"width": 1920, "height": 1080, "fps": [30.0, 25.0], "min_width": None}],
                }
            ],
        }
    ],
    "csi_cameras": [
        {
            "index": 0,
            "model": "imx477",
            "sensor_width": 4056,
            "sensor_height": 3040,
            "modes": [
                {"width": 2028, "height": 1080, "fps": 50.03},
                {"width": 4056, "height": 3040, "fps": 10.0},
            ],
        }
    ],
    "hardware_encoder": {"h264": True},
    "platform_nodes": [],
    "unavailable": {},
}
PI4_BOARD = {"soc": "BCM2711", "hardware_h264_encoder": True}


def pi4_validator(streams: Sequence[StreamConfig]) -> list[Problem]:
    return validate_streams(streams, PI4_DEVICES, PI4_BOARD, simulated=False)


def no_check(streams: Sequence[StreamConfig]) -> list[Problem]:
    return []


def ids(streams: Sequence[StreamConfig]) -> list[str]:
    return [stream.id for stream in streams]


def leftovers(directory: Path) -> list[str]:
    """Files other than streams.yaml and its backup (atomic_write's temporaries: ``.streams.yaml.*.tmp``)."""
    return sorted(p.name for p in directory.iterdir() if p.name not in ("streams.yaml", "streams.yaml.bak"))


# ------------------------------------------------------------------------------------------ seed vs file


def test_seed_counts_until_the_file_exists(tmp_path: Path) -> None:
    store = StreamStore(tmp_path, [GARAGE, HDMI])
    assert store.path.exists() == store.uses_file == False  # noqa: E712 - both, without narrowing
    assert ids(store.load()) == ["garage", "hdmi"]
    assert not store.path.exists()  # reading never writes
    store.save([parse_stream(PATTERN)])
    assert store.uses_file
    assert ids(store.load()) == ["pattern"]  # the file wins over the seed from now on
    assert ids(StreamStore(tmp_path, [GARAGE]).load()) == ["pattern"]  # also for the next agent start


def test_no_seed_and_no_file_is_no_streams(tmp_path: Path) -> None:
    assert StreamStore(tmp_path).load() == []


def test_an_empty_file_is_no_streams_not_the_seed(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").write_text("# emptied by hand\n")
    assert StreamStore(tmp_path, [GARAGE]).load() == []
    (tmp_path / "streams.yaml").write_text("streams:\n")
    assert StreamStore(tmp_path, [GARAGE]).load() == []


def test_a_broken_seed_names_the_config_file(tmp_path: Path) -> None:
    store = StreamStore(tmp_path, [{**GARAGE, "fps": 500}], seed_origin="/etc/pi-stream-agent/config.yaml")
    with pytest.raises(StreamStoreError) as exc:
        store.load()
    assert str(exc.value) == (
        "/etc/pi-stream-agent/config.yaml: invalid streams (fix them there):\n"
        '  streams[0] (id "garage"): fps: must be between 1 and 120 frames per second, got 500'
    )


# ------------------------------------------------------------------------------------------ round trips


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    streams = [
        parse_stream(GARAGE),
        parse_stream(HDMI),
        parse_stream({**PATTERN, "fps": 12.5, "enabled": False}),
    ]
    store = StreamStore(tmp_path)
    store.save(streams)
    assert StreamStore(tmp_path).load() == streams
    text = store.path.read_text()
    assert text.startswith(HEADER)
    assert "may edit it by hand while the agent is stopped" in text
    assert "  source: {type: csi, camera: 0}\n" in text
    assert "  bitrate: 2000000\n" in text  # ints in bit/s
    assert yaml.safe_load(text) == {"streams": [to_json(stream) for stream in streams]}
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o640
    assert leftovers(tmp_path) == []


def test_dump_is_stable(tmp_path: Path) -> None:
    streams = [parse_stream(GARAGE)]
    assert dump_streams(streams) == dump_streams(StreamStore(tmp_path).load() or streams)
    store = StreamStore(tmp_path)
    store.save(streams)
    assert store.path.read_bytes() == dump_streams(streams)


def test_hand_edited_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "streams.yaml").write_text(
        "streams:\n"
        "  - id: porch\n"
        "    source: {type: v4l2, device: /dev/v4l/by-id/usb-534d_USB_Video-video-index0, input_format: "
        "MJPG}\n"
        "    width: 1280\n"
        "    height: 720\n"
        "    fps: 30\n"
        "    bitrate: 1.5M\n"
    )
    (porch,) = StreamStore(tmp_path).load()
    assert (porch.id, porch.source.input_format, porch.bitrate, porch.rtsp_path) == (
        "porch",
        "mjpeg",
        1_500_000,
        "porch",
    )


def test_load_rereads_a_changed_file(tmp_path: Path) -> None:
    store = StreamStore(tmp_path)
    store.save([parse_stream(GARAGE)])
    assert ids(store.load()) == ["garage"]
    other = StreamStore(tmp_path)
    other.save([parse_stream(PATTERN)])
    assert ids(store.load()) == ["pattern"]


# --------------------------------------------------------------------------------------- backup, atomicity


def test_backup_keeps_the_previous_version(tmp_path: Path) -> None:
    store = StreamStore(tmp_path)
    store.save([parse_stream(GARAGE)])
    assert not store.backup_path.exists()  # nothing to back up the first time
    first = store.path.read_bytes()
    store.save([parse_stream(GARAGE), parse_stream(PATTERN)])
    assert store.backup_path.read_bytes() == first
    assert stat.S_IMODE(store.backup_path.stat().st_mode) == 0o640
    second = store.path.read_bytes()
    store.save([parse_stream(GARAGE), parse_stream(PATTERN)])  # unchanged: nothing rewritten
    assert store.backup_path.read_bytes() == first
    assert store.path.read_bytes() == second


def test_old_file_intact_when_the_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = StreamStore(tmp_path)
    store.save([parse_stream(GARAGE)])
    before = store.path.read_bytes()
    calls: list[str] = []

    def failing_replace(source: Any, target: Any) -> None:
        calls.append(os.path.basename(target))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="No space left"):
        store.save([parse_stream(PATTERN)])
    monkeypatch.undo()
    assert calls == ["streams.yaml.bak"]  # the backup is written first; the failure stopped everything
    assert store.path.read_bytes() == before
    assert ids(StreamStore(tmp_path).load()) == ["garage"]
    assert leftovers(tmp_path) == []  # no temporary file left behind


def test_old_file_intact_when_the_data_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StreamStore(tmp_path)
    store.save([parse_stream(GARAGE)])
    before = store.path.read_bytes()
    real_fsync = os.fsync

    def fsync_fails_for_the_main_file(fd: int) -> None:
        # Only the new streams.yaml's temporary file (".streams.yaml.<random>.tmp") fails, as on a full disk.
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(".streams.yaml.") and not name.startswith(".streams.yaml.bak."):
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_fails_for_the_main_file)
    with pytest.raises(OSError, match="Input/output error"):
        store.save([parse_stream(PATTERN)])
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert store.backup_path.read_bytes() == before
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_state_dir(tmp_path: Path) -> None:
    store = StreamStore(tmp_path)
    store.save([parse_stream(GARAGE)])
    before = store.path.read_bytes()
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(PermissionError):
            store.save([parse_stream(PATTERN)])
    finally:
        tmp_path.chmod(0o700)
    assert store.path.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_save_refuses_a_list_that_would_not_load_back(tmp_path: Path) -> None:
    store = StreamStore(tmp_path)
    with pytest.raises(StreamConfigError) as exc:
        store.save([parse_stream(GARAGE), parse_stream({**PATTERN, "id": "garage"})])
    assert str(exc.value) == (
        "refusing to save streams:\n"
        '  streams[1] (id "garage"): id: "garage" is already the id of streams[0]; every stream needs its '
        "own id\n"
        '  streams[1] (id "garage"): rtsp_path: "garage" is already the path of the main stream of '
        "streams[0] "
        '(id "garage"); choose another'
    )
    assert not store.path.exists()


# ----------------------------------------------------------------------------------------- broken files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "streams:\n  - id: garage\n    width: [1280\n",
            "not valid YAML at line 4, column 1: expected ',' or ']', but got '<stream end>'; fix it, or "
            "replace it with streams.yaml.bak, while the agent is stopped",
        ),
        (
            "streams:\n  - id: garage\n    fps: 30\n    fps: 25\n",
            "not valid YAML at line 4, column 5: found duplicate key 'fps'; fix it, or replace it with "
            "streams.yaml.bak, while the agent is stopped",
        ),
        (
            "- id: garage\n",
            "must hold one key, streams:, with a list of streams below it; fix it, or replace it with "
            "streams.yaml.bak, while the agent is stopped",
        ),
        (
            "streams: []\nrtsp: {}\n",
            "must hold one key, streams:, with a list of streams below it; fix it, or replace it with "
            "streams.yaml.bak, while the agent is stopped",
        ),
    ],
)
def test_broken_yaml_names_file_place_and_fix(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "streams.yaml"
    path.write_text(content)
    with pytest.raises(StreamStoreError) as exc:
        StreamStore(tmp_path, [GARAGE]).load()  # never silently the seed instead
    assert str(exc.value) == f"{path}: cannot be used:\n  {path}: {message}"
    (problem,) = exc.value.problems
    assert problem.to_json()["message"] == f"The agent's streams file ({path}) cannot be used: {message}."
    assert problem.to_json()["field"] is None


def test_streams_file_reads_merge_keys_like_the_config_file(tmp_path: Path) -> None:
    """One YAML loader for both files: a streams: section copied from the config file, anchors and merge
    keys included, reads the same in streams.yaml (the store's own loader used to refuse <<)."""
    (tmp_path / "streams.yaml").write_text(
        "streams:\n"
        "  - &garage {id: garage, source: {type: csi, camera: 0},\n"
        "             width: 1280, height: 720, fps: 30, bitrate: 2M}\n"
        "  - <<: *garage\n"
        "    id: yard\n"
        "    source: {type: test}\n"
    )
    streams = StreamStore(tmp_path).load()
    assert [(s.id, s.width, s.source.kind) for s in streams] == [
        ("garage", 1280, "csi"),
        ("yard", 1280, "test"),
    ]


def test_invalid_streams_name_file_key_path_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "streams.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "streams": [
                    GARAGE,
                    {**HDMI, "encoder": "copy", "source": {"type": "v4l2", "device": CARD}},
                    {**PATTERN, "id": "Bad Id", "widht": 320},
                ]
            }
        )
    )
    with pytest.raises(StreamStoreError) as exc:
        StreamStore(tmp_path).load()
    assert str(exc.value) == (
        f"{path}: invalid streams (fix it, or replace it with streams.yaml.bak, while the agent is "
        f"stopped):\n"
        '  streams[1] (id "hdmi"): encoder: copy needs the card\'s compressed stream, but no input_format is '
        "set: "
        "set source.input_format to mjpeg or h264 (one the card offers), or use encoder auto\n"
        "  streams[2]: id: must be 1 to 32 characters of lowercase letters, digits, _ and -, starting with a "
        "letter or digit (e.g. garage or cam-1), got 'Bad Id'\n"
        "  streams[2]: widht: unknown key for a stream (check the spelling; it takes id, name, source, "
        "width, "
        "height, fps, bitrate, keyframe_interval_s, encoder, rtsp_path, enabled, substream, settings, "
        "v4l2_controls, audio, motion_region)"
    )


def test_not_utf8_and_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "streams.yaml"
    path.write_bytes(b"streams:\n  - id: caf\xe9\n")
    with pytest.raises(StreamStoreError) as exc:
        StreamStore(tmp_path).load()
    assert (
        str(exc.value)
        == f"{path}: cannot be used:\n  {path}: is not UTF-8 text (byte 0xe9 at line 2, column 12); "
        f"save it as UTF-8; fix it, or replace it with streams.yaml.bak, while the agent is stopped"
    )
    path.unlink()
    path.mkdir()  # something that cannot be read as a file
    with pytest.raises(StreamStoreError) as exc:
        StreamStore(tmp_path).load()
    assert str(exc.value) == f"{path}: cannot be used:\n  {path}: cannot be read: Is a directory"


# ------------------------------------------------------------------------------------- upsert and remove


def test_upsert_adds_and_replaces_in_place(tmp_path: Path) -> None:
    store = StreamStore(tmp_path, [GARAGE, HDMI])
    added = store.upsert(PATTERN, pi4_validator)
    assert added == parse_stream(PATTERN)
    assert ids(store.load()) == ["garage", "hdmi", "pattern"]
    assert store.uses_file  # the first change moves the seed into streams.yaml
    replaced = store.upsert({**GARAGE, "fps": 25, "name": "Garage door"}, pi4_validator)
    assert (replaced.fps, replaced.name) == (25.0, "Garage door")
    assert ids(store.load()) == ["garage", "hdmi", "pattern"]  # kept its place
    assert store.get("garage") == replaced
    assert store.warnings == []


def test_upsert_accepts_the_api_json_back(tmp_path: Path) -> None:
    store = StreamStore(tmp_path, [GARAGE])
    document = to_json(store.get("garage"))
    assert store.upsert(document, pi4_validator) == store.get("garage")
    assert store.load() == [parse_stream(GARAGE)]


def test_upsert_is_all_or_nothing(tmp_path: Path) -> None:
    store = StreamStore(tmp_path, [GARAGE, HDMI])
    store.upsert(PATTERN, pi4_validator)
    before = store.path.read_bytes()
    backup = store.backup_path.exists()
    # Same camera as garage, too fast for imx477 at that size, and the hdmi path: every problem listed.
    porch = {
        **GARAGE,
        "id": "porch",
        "width": 1920,
        "height": 1080,
        "fps": 60,
        "rtsp_path": "hdmi",
        "substream": None,
    }
    with pytest.raises(StreamConfigError) as exc:
        store.upsert(porch, pi4_validator)
    assert [str(p) for p in exc.value.problems] == [
        'streams[3] (id "porch"): fps: imx477 delivers 1920x1080 at up to 50.03 fps (sensor mode 2028x1080): '
        "lower fps to 50",
        'streams[3] (id "porch"): rtsp_path: "hdmi" is already the path of the main stream of streams[1] '
        '(id "hdmi"); choose another',
        'streams[3] (id "porch"): source: CSI camera 0 (imx477) already feeds streams[0] (id "garage"); a '
        "camera "
        'or card can feed one stream only: give "garage" a substream instead',
    ]
    assert store.path.read_bytes() == before
    assert store.backup_path.exists() == backup
    assert leftovers(tmp_path) == []


def test_upsert_on_the_seed_writes_nothing_when_refused(tmp_path: Path) -> None:
    store = StreamStore(tmp_path, [GARAGE])
    with pytest.raises(StreamConfigError) as exc:
        store.upsert({**PATTERN, "bitrate": "fast"}, pi4_validator)
    assert [str(p) for p in exc.value.problems] == [
        'streams[1] (id "pattern"): bitrate: expected a bitrate (give bit/s as a number or with k or M, e.g. '
        '2000000, "2M" or "800k"), got \'fast\''
    ]
    with pytest.raises(StreamConfigError) as exc:
        store.upsert({**HDMI, "encoder": "hardware", "width": 2560, "height": 1440}, pi4_validator)
    assert not store.path.exists()
    assert leftovers(tmp_path) == []


def test_upsert_keeps_warnings(tmp_path: Path) -> None:
    store = StreamStore(tmp_path)
    unplugged = "/dev/v4l/by-id/usb-MACROSILICON_USB3.0_Video_26241327-video-index0"
    store.upsert(
        {**HDMI, "source": {"type": "v4l2", "device": unplugged, "input_format": "mjpeg"}}, pi4_validator
    )
    assert [str(p) for p in store.warnings] == [
        f'streams[0] (id "hdmi"): source.device: {unplugged} is not connected right now; the stream waits '
        f"for it "
        "and starts when it appears"
    ]
    assert ids(store.load()) == ["hdmi"]


def test_upsert_rejects_what_is_not_a_stream(tmp_path: Path) -> None:
    store = StreamStore(tmp_path)
    with pytest.raises(StreamConfigError) as exc:
        store.upsert(["garage"], no_check)  # type: ignore[arg-type]
    assert [str(p) for p in exc.value.problems] == [
        "streams[0]: expected a mapping of keys such as id:, source:, width: …, got list"
    ]


def test_remove(tmp_path: Path) -> None:
    store = StreamStore(tmp_path, [GARAGE, HDMI, PATTERN])
    removed = store.remove("hdmi")
    assert removed.id == "hdmi"
    assert ids(store.load()) == ["garage", "pattern"]
    with pytest.raises(StreamNotFoundError) as exc:
        store.remove("hdmi")
    assert str(exc.value) == 'no stream has the id "hdmi"'
    with pytest.raises(StreamNotFoundError):
        store.get("hdmi")


def test_remove_is_not_held_up_by_other_streams_problems(tmp_path: Path) -> None:
    # Camera 1 is not on this Pi (pi4_validator would refuse it); removing another stream still works.
    store = StreamStore(tmp_path, [{**GARAGE, "source": {"type": "csi", "camera": 1}}, PATTERN])
    assert pi4_validator(store.load())[0].is_error
    store.remove("pattern")
    assert ids(store.load()) == ["garage"]


def test_a_broken_file_blocks_changes_instead_of_losing_streams(tmp_path: Path) -> None:
    path = tmp_path / "streams.yaml"
    path.write_text("streams:\n  - id: garage\n    fps: [\n")
    store = StreamStore(tmp_path, [GARAGE])
    with pytest.raises(StreamStoreError):
        store.upsert(PATTERN, no_check)
    with pytest.raises(StreamStoreError):
        store.remove("garage")
    assert path.read_text() == "streams:\n  - id: garage\n    fps: [\n"
