"""The ``-progress`` and ``-vstats`` parsers against output captured from Debian 12's ffmpeg (5.1.9-0+deb12u1)
on the dev machine — the same ffmpeg a Pi on Raspberry Pi OS Bookworm runs — and, at the end, from both
5.1 and Debian 13's 7.1 (Raspberry Pi OS Trixie) in tests/fixtures/ffmpeg."""

from __future__ import annotations

import pytest

from pi_stream_agent.streams.model import Progress
from pi_stream_agent.streams.progress import (
    ProgressBlock,
    ProgressParser,
    apply_block,
    parse_bitrate,
    parse_out_time_us,
    parse_speed,
)
from tests.agent.helpers import FFMPEG_VERSIONS, ffmpeg_capture

# ffmpeg -re -f lavfi -i testsrc2=size=320x240:rate=15 -t 3.2 -c:v libx264 -preset ultrafast -g 15 -bf 0
#   -f rtsp -rtsp_transport udp rtsp://127.0.0.1:18555/cam -progress pipe:1 -stats_period 1
# (the RTSP muxer has no byte count, so bitrate and total_size are N/A)
RTSP_LIBX264 = """\
frame=1
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=N/A
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=16
fps=15.89
stream_0_0_q=19.0
bitrate=N/A
total_size=N/A
out_time_us=733344
out_time_ms=733344
out_time=00:00:00.733344
dup_frames=0
drop_frames=0
speed=0.728x
progress=continue
frame=31
fps=15.42
stream_0_0_q=20.0
bitrate=N/A
total_size=N/A
out_time_us=1733344
out_time_ms=1733344
out_time=00:00:01.733344
dup_frames=0
drop_frames=0
speed=0.862x
progress=continue
frame=46
fps=15.27
stream_0_0_q=19.0
bitrate=N/A
total_size=N/A
out_time_us=2733344
out_time_ms=2733344
out_time=00:00:02.733344
dup_frames=0
drop_frames=0
speed=0.907x
progress=continue
frame=48
fps=14.97
stream_0_0_q=-1.0
bitrate=N/A
total_size=N/A
out_time_us=3133344
out_time_ms=3133344
out_time=00:00:03.133344
dup_frames=0
drop_frames=0
speed=0.977x
progress=end
"""

# The same source for 2.5 s into ``-f mpegts -y /tmp/x.ts``: a muxer with a byte count, so a bitrate.
MPEGTS_LIBX264 = """\
frame=1
fps=0.00
stream_0_0_q=0.0
bitrate=N/A
total_size=0
out_time_us=0
out_time_ms=0
out_time=00:00:00.000000
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=16
fps=15.95
stream_0_0_q=19.0
bitrate= 646.0kbits/s
total_size=59220
out_time_us=733344
out_time_ms=733344
out_time=00:00:00.733344
dup_frames=0
drop_frames=0
speed=0.731x
progress=continue
frame=31
fps=15.44
stream_0_0_q=20.0
bitrate= 610.0kbits/s
total_size=132164
out_time_us=1733344
out_time_ms=1733344
out_time=00:00:01.733344
dup_frames=0
drop_frames=0
speed=0.863x
progress=continue
frame=38
fps=14.96
stream_0_0_q=-1.0
bitrate= 612.8kbits/s
total_size=188940
out_time_us=2466678
out_time_ms=2466678
out_time=00:00:02.466678
dup_frames=0
drop_frames=0
speed=0.971x
progress=end
"""

# ffmpeg … -f h264 - | ffmpeg -f h264 -i pipe:0 -c copy -f mpegts -y /tmp/y.ts -progress pipe:1:
# the copying side's first block divides by ~11 µs of output (a silly bitrate) and its last block
# reports the speed in exponent notation.
H264_PIPE_COPY = """\
frame=1
fps=0.00
stream_0_0_q=-1.0
bitrate=6973090.9kbits/s
total_size=9588
out_time_us=11
out_time_ms=11
out_time=00:00:00.000011
dup_frames=0
drop_frames=0
speed=N/A
progress=continue
frame=38
fps=0.00
stream_0_0_q=-1.0
bitrate= 612.8kbits/s
total_size=188940
out_time_us=2466689
out_time_ms=2466689
out_time=00:00:02.466689
dup_frames=0
drop_frames=0
speed=2.46e+03x
progress=end
"""


def blocks_of(text: str) -> list[ProgressBlock]:
    parser = ProgressParser()
    return [block for line in text.splitlines() if (block := parser.feed(line)) is not None]


def test_rtsp_capture() -> None:
    assert blocks_of(RTSP_LIBX264) == [
        ProgressBlock(frames=1, fps=0.0, bitrate_bps=None, out_time_s=0.0, speed=None, end=False),
        ProgressBlock(frames=16, fps=15.89, bitrate_bps=None, out_time_s=0.733344, speed=0.728, end=False),
        ProgressBlock(frames=31, fps=15.42, bitrate_bps=None, out_time_s=1.733344, speed=0.862, end=False),
        ProgressBlock(frames=46, fps=15.27, bitrate_bps=None, out_time_s=2.733344, speed=0.907, end=False),
        ProgressBlock(frames=48, fps=14.97, bitrate_bps=None, out_time_s=3.133344, speed=0.977, end=True),
    ]


def test_mpegts_capture_has_bitrates() -> None:
    blocks = blocks_of(MPEGTS_LIBX264)
    assert [b.frames for b in blocks] == [1, 16, 31, 38]
    assert [b.bitrate_bps for b in blocks] == [None, 646_000.0, 610_000.0, pytest.approx(612_800.0)]
    assert [b.out_time_s for b in blocks] == [0.0, 0.733344, 1.733344, 2.466678]
    assert [b.speed for b in blocks] == [None, 0.731, 0.863, 0.971]
    assert [b.end for b in blocks] == [False, False, False, True]


def test_copy_capture_odd_values() -> None:
    first, last = blocks_of(H264_PIPE_COPY)
    assert (first.frames, first.fps, first.out_time_s) == (1, 0.0, 0.000011)
    assert (first.speed, first.end) == (None, False)
    assert first.bitrate_bps == pytest.approx(6_973_090_900.0)
    assert last.frames == 38
    assert last.speed == 2460.0
    assert last.bitrate_bps == pytest.approx(612_800.0)
    assert last.end


def test_apply_block_moves_updated_at_only_when_frames_advance() -> None:
    progress = Progress()
    blocks = blocks_of(RTSP_LIBX264)
    assert apply_block(progress, blocks[0], now=10.0)
    assert (progress.frames, progress.updated_at, progress.blocks) == (1, 10.0, 1)
    assert apply_block(progress, blocks[1], now=11.0)
    assert progress == Progress(
        frames=16, fps=15.89, bitrate_bps=None, out_time_s=0.733344, speed=0.728, updated_at=11.0, blocks=2
    )
    # A frozen producer: ffmpeg keeps reporting the same count (or nothing) — no progress.
    assert not apply_block(progress, blocks[1], now=12.0)
    assert (progress.frames, progress.updated_at, progress.blocks) == (16, 11.0, 3)


def test_apply_block_first_report_without_frames_is_not_progress() -> None:
    progress = Progress()
    parser = ProgressParser()
    # frame=0 (nothing encoded yet) is built from the captured block's keys, with the count at 0.
    for line in ("frame=0", "fps=0.00", "bitrate=N/A", "out_time_us=0", "speed=N/A"):
        assert parser.feed(line) is None
    block = parser.feed("progress=continue")
    assert block is not None
    assert not apply_block(progress, block, now=5.0)
    assert (progress.frames, progress.updated_at, progress.blocks) == (0, None, 1)


def test_apply_block_without_frame_keeps_the_count() -> None:
    progress = Progress(frames=16, updated_at=3.0, blocks=2)
    no_frame = ProgressBlock(frames=None, fps=None, bitrate_bps=None, out_time_s=None, speed=None, end=False)
    assert not apply_block(progress, no_frame, now=4.0)
    assert (progress.frames, progress.updated_at, progress.blocks) == (16, 3.0, 3)
    # The next real block is compared with 16, not with "unknown".
    assert not apply_block(progress, blocks_of(RTSP_LIBX264)[1], now=5.0)
    assert progress.updated_at == 3.0


def test_garbage_never_raises() -> None:
    # Constructed: damaged values in ffmpeg's key=value form.
    parser = ProgressParser()
    lines = [
        "",
        "no equals sign here",
        "Input #0, lavfi, from 'testsrc2':",
        "frame=abc",
        "fps=nan",
        "bitrate=-12.0kbits/s",
        "out_time_us=-9223372036854775807",
        "speed=fastx",
        "=",
        "progress=continue",
    ]
    blocks = [block for line in lines if (block := parser.feed(line)) is not None]
    assert blocks == [ProgressBlock(None, None, None, None, None, end=False)]


def test_block_without_end_line_is_never_emitted_and_stays_bounded() -> None:
    parser = ProgressParser()
    for index in range(10_000):
        assert parser.feed(f"key{index}=value") is None
    assert len(parser._fields) <= 64  # a stream that never says progress= cannot grow memory
    block = parser.feed("progress=end")
    assert block is not None and block.end


def test_out_time_ms_is_microseconds_when_us_is_absent() -> None:
    parser = ProgressParser()
    parser.feed("frame=16")
    parser.feed("out_time_ms=733344")
    block = parser.feed("progress=continue")
    assert block is not None and block.out_time_s == 0.733344


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" 646.0kbits/s", 646_000.0),
        ("6973090.9kbits/s", pytest.approx(6_973_090_900.0)),
        ("N/A", None),
        ("", None),
        ("646.0", None),
        ("xkbits/s", None),
    ],
)
def test_parse_bitrate(text: str, expected: float | None) -> None:
    assert parse_bitrate(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.728x", 0.728), ("   1x", 1.0), ("2.46e+03x", 2460.0), ("N/A", None), ("x", None), ("-1x", None)],
)
def test_parse_speed(text: str, expected: float | None) -> None:
    assert parse_speed(text) == expected


def test_parse_out_time_us() -> None:
    assert parse_out_time_us("2733344") == 2.733344
    assert parse_out_time_us("N/A") is None
    assert parse_out_time_us("-1") is None


# -- the bitrate the agent measures (ffmpeg writes total_size=N/A and bitrate=N/A for RTSP outputs) --------

VSTATS = [
    "out=  0 st=  0 frame=     0 q= 15.0 f_size=   9446 s_size=        0kB time= 0.010 br=  1133.5kbits/s"
    " avg_br=     0.0kbits/s type= I",
    "out=  0 st=  0 frame=    15 q= 23.0 f_size=   2048 s_size=       40kB time= 1.510 br=   671.3kbits/s"
    " avg_br=   881.2kbits/s type= P",
    "out=  0 st=  0 frame=    30 q= 23.0 f_size=   1024 s_size=       80kB time= 3.010 br=   671.3kbits/s"
    " avg_br=   881.2kbits/s type= P",
]


def test_vstats_lines_give_each_frame_size_and_time() -> None:
    from pi_stream_agent.streams.progress import FrameStats, parse_vstats_line

    assert parse_vstats_line(VSTATS[0]) == FrameStats(0, 0, 9446, 0.010)
    assert parse_vstats_line(VSTATS[1]) == FrameStats(0, 0, 40 * 1024 + 2048, 1.510)
    assert parse_vstats_line("frame=12") is None
    assert parse_vstats_line("out= 0 st= x f_size= 1 s_size= 1kB time= 1") is None
    assert parse_vstats_line("out=  0 st=  0 frame= 1 f_size= 9 s_size= 1kB") is None  # no time


def test_bitrate_is_measured_over_media_time_not_reading_time() -> None:
    from pi_stream_agent.streams.progress import parse_vstats_line, record_size

    progress = Progress()
    frames = [parse_vstats_line(line) for line in VSTATS]
    for frame in frames:  # all read at once (a late agent): the rate is the same
        assert frame is not None
        record_size(progress, frame.time_s, frame.total_bytes)
    # Measured over the last full window of media time (MIN_RATE_WINDOW_S): frames 15 → 30.
    expected = ((80 * 1024 + 1024) - (40 * 1024 + 2048)) * 8 / (3.010 - 1.510)
    assert progress.measured_bitrate_bps == pytest.approx(expected)
    # A new encoder (counters start over) restarts the measurement instead of giving a negative rate.
    record_size(progress, 0.0, 100)
    assert progress.measured_bitrate_bps == pytest.approx(expected)
    assert progress.size_mark == (0.0, 100)


# -- each ffmpeg the agent meets: 5.1 (Bookworm) and 7.1 (Trixie), from tests/fixtures/ffmpeg/capture.py ----


@pytest.mark.parametrize("version", FFMPEG_VERSIONS)
def test_each_ffmpeg_s_vstats_lines(version: str) -> None:
    from pi_stream_agent.streams.progress import FrameStats, parse_vstats_line, record_size

    # 7.1 writes s_size in "KiB" where 5.1 wrote "kB"; both are size / 1024.
    lines = ffmpeg_capture(version, "publisher_vstats").text.splitlines()
    frames = [parse_vstats_line(line) for line in lines]
    assert None not in frames
    assert frames[:2] == [FrameStats(0, 0, 9670, 0.010), FrameStats(0, 0, 9 * 1024 + 3625, 0.067)]
    progress = Progress()
    for frame in frames:
        assert frame is not None
        record_size(progress, frame.time_s, frame.total_bytes)
    # The publisher asked libx264 for 300 kbit/s; its first second runs above that (the first key frame).
    assert progress.measured_bitrate_bps is not None
    assert 200_000 < progress.measured_bitrate_bps < 1_000_000


@pytest.mark.parametrize("version", FFMPEG_VERSIONS)
def test_each_ffmpeg_s_progress_blocks(version: str) -> None:
    # The same publisher's -progress output: no size or bitrate for an RTSP output, frames that advance.
    blocks = blocks_of(ffmpeg_capture(version, "publisher_progress").text)
    assert len(blocks) >= 3
    assert [block.end for block in blocks] == [False] * (len(blocks) - 1) + [True]
    frames = [block.frames for block in blocks]
    assert None not in frames and frames == sorted(frames) and frames[-1] > 40
    assert all(block.bitrate_bps is None and block.total_size is None for block in blocks)
    assert all(block.out_time_s is not None for block in blocks)
    assert blocks[-1].fps is not None and 10 < blocks[-1].fps < 30
