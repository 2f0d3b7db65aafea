"""classify_exit on real log lines.

Every log line below is real: copied from a public report (cited above it), printed by Debian 12's
ffmpeg 5.1.9 on this machine (the command is given) or captured from ffmpeg 5.1 and 7.1 (Debian 13) in
tests/fixtures/ffmpeg. Where no verbatim line was found, the input is built from the program's own format
string and says so. Lines go through a real LogRing, so they carry
the ``"<process>: "`` tag the process layer's ``text_tail`` adds.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from pi_stream_agent.streams import causes
from pi_stream_agent.streams.causes import Classification, classify_exit
from pi_stream_agent.streams.model import ExitCause, ExitInfo, LogRing, ProcessExit
from tests.agent.helpers import FFMPEG_VERSIONS, ffmpeg_capture

RPICAM = "rpicam-vid"
FFMPEG = "ffmpeg"


def proc(name: str, returncode: int | None = 0, sig: int | None = None) -> ProcessExit:
    if sig is not None:
        returncode = -sig
    return ProcessExit(name=name, pid=1000, returncode=returncode, signal=sig)


def make_exit(
    lines: list[tuple[str, str]],
    *,
    processes: tuple[ProcessExit, ...] = (proc(RPICAM, 255), proc(FFMPEG, 0)),
    first: str | None = RPICAM,
    requested: bool = False,
) -> ExitInfo:
    ring = LogRing()
    for process, line in lines:
        ring.append(process, line)
    return ExitInfo(
        processes=processes,
        first=first,
        runtime_s=2.0,
        requested=requested,
        log_tail=tuple(ring.text_tail(50)),
    )


def ffmpeg_only(lines: list[str], returncode: int = 1) -> ExitInfo:
    return make_exit([(FFMPEG, line) for line in lines], processes=(proc(FFMPEG, returncode),), first=FFMPEG)


def rpicam_then_ffmpeg(lines: list[str]) -> ExitInfo:
    """rpicam-vid failed (exit 255 = its ``return -1``); ffmpeg then saw end of input and exited 0."""
    return make_exit([(RPICAM, line) for line in lines])


# ------------------------------------------------------------------------------------ camera busy


def test_libcamera_pipeline_in_use_by_another_process() -> None:
    # Gordon999/Pi_LIbCamera_GUI#4 (libcamera v0.0.1, ov5647): a second program opened the camera.
    result = classify_exit(
        rpicam_then_ffmpeg(
            [
                "[0:19:06.390293141] [2746]  INFO Camera camera_manager.cpp:293 libcamera v0.0.1+54-d528119f",
                "[0:19:06.419578012] [2747]  INFO RPI raspberrypi.cpp:1414 Registered camera "
                "/base/soc/i2c0mux/i2c@1/ov5647@36 to Unicam device /dev/media2 and ISP device /dev/media0",
                "[0:19:06.419783286] [2746]  INFO Camera camera.cpp:839 Pipeline handler in use by "
                "another process",
                "ERROR: *** failed to acquire camera /base/soc/i2c0mux/i2c@1/ov5647@36 ***",
            ]
        )
    )
    assert result.cause is ExitCause.DEVICE_BUSY
    assert result.summary == (
        "the camera is in use by another program (Pipeline handler in use by another process)"
    )
    assert result.evidence == (
        "rpicam-vid: [0:19:06.419783286] [2746]  INFO Camera camera.cpp:839 "
        "Pipeline handler in use by another process"
    )


def test_rpicam_failed_to_acquire_camera_alone() -> None:
    # rpicam-apps#660 (Arducam 64MP): after the frontend timeouts the next start printed only this.
    result = classify_exit(
        rpicam_then_ffmpeg(
            ["ERROR: *** failed to acquire camera /base/soc/i2c0mux/i2c@1/arducam_64mp@1a ***"]
        )
    )
    assert result.cause is ExitCause.DEVICE_BUSY
    assert result.summary == (
        "the camera is in use by another program "
        "(failed to acquire camera /base/soc/i2c0mux/i2c@1/arducam_64mp@1a)"
    )


def test_libcamera_v4l2_device_or_resource_busy() -> None:
    # rpicam-apps#496 (libcamera-hello on OctoPi, imx708): the final line is generic, the cause is above.
    result = classify_exit(
        rpicam_then_ffmpeg(
            [
                "[0:00:52.242462687] [981]  INFO Camera camera.cpp:1028 configuring streams: (0) "
                "2304x1296-YUV420",
                "[0:00:52.243006594] [982] ERROR V4L2 v4l2_videodevice.cpp:1047 /dev/video0[13:cap]: "
                "Unable to set format: Device or resource busy",
                "ERROR: *** failed to configure streams ***",
            ]
        )
    )
    assert result.cause is ExitCause.DEVICE_BUSY
    assert result.summary == (
        "the camera is in use by another program "
        "(/dev/video0[13:cap]: Unable to set format: Device or resource busy)"
    )
    assert result.evidence is not None and "Unable to set format" in result.evidence


def test_ffmpeg_usb_card_busy() -> None:
    # homebridge-camera-ffmpeg#1401: ffmpeg -f v4l2 -i /dev/video0 while another ffmpeg held the card
    # (the homebridge timestamp/plugin prefix removed, ffmpeg's own text kept).
    result = classify_exit(ffmpeg_only(["/dev/video0: Device or resource busy"]))
    assert result.cause is ExitCause.DEVICE_BUSY
    assert result.summary == "the camera is in use by another program (/dev/video0: Device or resource busy)"


# ------------------------------------------------------------------------------------- device gone


def test_ffmpeg_v4l2_device_node_missing() -> None:
    # Debian ffmpeg 5.1.9 here: ffmpeg -f v4l2 -i /dev/video0 -t 1 -f null - (no such node); the same
    # two lines are quoted in moritzmhmk/homebridge-camera-rpi#30.
    result = classify_exit(
        ffmpeg_only(
            [
                "[video4linux2,v4l2 @ 0x5591f92308c0] Cannot open video device /dev/video0: No such "
                "file or directory",
                "/dev/video0: No such file or directory",
            ]
        )
    )
    assert result.cause is ExitCause.DEVICE_GONE
    assert result.summary == (
        "the capture device is not there any more (unplugged?) (/dev/video0: No such file or directory)"
    )


def test_ffmpeg_usb_card_unplugged_while_streaming() -> None:
    # Built from libavdevice/v4l2.c mmap_read_frame: av_log(ctx, AV_LOG_ERROR, "ioctl(VIDIOC_DQBUF): %s\n")
    # with strerror(ENODEV), in the "[video4linux2,v4l2 @ 0x…]" context ffmpeg prints (see the test
    # above). The same text is quoted from ffmpeg in public project notes about unplugged USB cards;
    # ffmpeg then exits 0, so the exit code alone says nothing.
    result = classify_exit(
        ffmpeg_only(
            ["[video4linux2,v4l2 @ 0x5591f92308c0] ioctl(VIDIOC_DQBUF): No such device"], returncode=0
        )
    )
    assert result.cause is ExitCause.DEVICE_GONE
    assert result.summary.endswith("(ioctl(VIDIOC_DQBUF): No such device)")


def test_csi_camera_frontend_timeout() -> None:
    # rpicam-apps#660 (Arducam 64MP on a Pi): the sensor stopped delivering frames.
    result = classify_exit(
        rpicam_then_ffmpeg(
            [
                "ERROR: Device timeout detected, attempting a restart!!!",
                "[5:00:54.982057588] [2324]  WARN V4L2 v4l2_videodevice.cpp:2007 /dev/video0[14:cap]: "
                "Dequeue timer of 1000000.00us has expired!",
                "[5:00:54.982184292] [2324] ERROR RPI pipeline_base.cpp:1424 Camera frontend has timed out!",
                "[5:00:54.982246755] [2324] ERROR RPI pipeline_base.cpp:1425 "
                "Please check that your camera sensor connector is attached securely.",
                "[5:00:54.982308792] [2324] ERROR RPI pipeline_base.cpp:1426 "
                "Alternatively, try another cable and/or sensor.",
                "ERROR: Device timeout detected, attempting a restart!!!",
            ]
        )
    )
    assert result.cause is ExitCause.DEVICE_GONE
    assert result.summary == (
        "the camera stopped sending frames (check the ribbon cable and the power supply) "
        "(Camera frontend has timed out!)"
    )


# -------------------------------------------------------------------------------- camera not found


def test_no_cameras_available() -> None:
    # rpicam-apps#828 (Pi 5, Camera Module 3 with the wrong cable).
    result = classify_exit(
        rpicam_then_ffmpeg(
            [
                "[0:13:57.732391469] [810]  INFO Camera camera_manager.cpp:326 libcamera v0.5.0+59-d83ff0a4",
                "Preview window unavailable",
                "ERROR: *** no cameras available ***",
            ]
        )
    )
    assert result.cause is ExitCause.CAMERA_NOT_FOUND
    assert result.summary == "libcamera found no camera (no cameras available)"
    assert result.evidence == "rpicam-vid: ERROR: *** no cameras available ***"


def test_selected_camera_index_not_available() -> None:
    # rpicam-apps core/rpicam_app.cpp OpenCamera(): throw std::runtime_error("selected camera is not
    # available"), printed by rpicam's main as "ERROR: *** <what> ***" (the wrapper seen in every
    # rpicam error above); mediamtx#3715 reports the same text from MediaMTX's own rpiCamera source.
    result = classify_exit(rpicam_then_ffmpeg(["ERROR: *** selected camera is not available ***"]))
    assert result.cause is ExitCause.CAMERA_NOT_FOUND
    assert result.summary == "the configured camera is not connected (selected camera is not available)"


# ------------------------------------------------------------------------------- buffer allocation


def test_unable_to_request_buffers_before_a_generic_last_line() -> None:
    # rpicam-apps#555 (Allsky, HQ camera): the last line alone would say nothing.
    result = classify_exit(
        rpicam_then_ffmpeg(
            [
                "[111:06:04.333128904] [2815] ERROR V4L2 v4l2_videodevice.cpp:1241 /dev/video14[16:cap]: "
                "Unable to request 1 buffers: Cannot allocate memory",
                "[111:06:04.333312828] [2815] ERROR RPI raspberrypi.cpp:1133 Failed to allocate buffers",
                "ERROR: *** failed to start camera ***",
            ]
        )
    )
    assert result.cause is ExitCause.BUFFER_ALLOCATION
    assert result.summary == (
        "not enough contiguous memory (CMA) for the camera buffers "
        "(/dev/video14[16:cap]: Unable to request 1 buffers: Cannot allocate memory)"
    )


def test_dma_heap_allocation_failure() -> None:
    # rpicam-apps#707 (Pi 4, Arducam 16MP, libcamera-still).
    result = classify_exit(
        rpicam_then_ffmpeg(
            [
                "dmaHeap allocation failure for rpicam-apps0",
                "ERROR: *** failed to allocate capture buffers for stream ***",
            ]
        )
    )
    assert result.cause is ExitCause.BUFFER_ALLOCATION
    assert result.evidence == "rpicam-vid: dmaHeap allocation failure for rpicam-apps0"


def test_allocation_failure_with_terminal_colour_codes() -> None:
    # rpicam-apps#718: libcamera coloured its log (the issue shows the ESC bytes as "�"; restored here).
    line = (
        "[23:50:08.514187869] [4304] \x1b[1;31mERROR \x1b[1;37mV4L2 \x1b[1;34mv4l2_videodevice.cpp:1241 "
        "\x1b[0;32m/dev/video0[12:cap]: \x1b[0mUnable to request 1 buffers: Cannot allocate memory"
    )
    result = classify_exit(rpicam_then_ffmpeg([line, "ERROR: *** failed to allocate capture buffers ***"]))
    assert result.cause is ExitCause.BUFFER_ALLOCATION
    assert result.summary.endswith(
        "(/dev/video0[12:cap]: Unable to request 1 buffers: Cannot allocate memory)"
    )
    assert result.evidence is not None and "\x1b" not in result.evidence


def test_picamera2_style_failed_to_allocate_buffers() -> None:
    # picamera2#422 (imx219 3280x2464 still): the V4L2 line and libcamera's follow-up.
    result = classify_exit(
        rpicam_then_ffmpeg(
            [
                "[1:06:28.271766326] [11283] ERROR V4L2 v4l2_videodevice.cpp:1241 /dev/video14[19:cap]: "
                "Unable to request 1 buffers: Cannot allocate memory",
                "Failed to allocate buffers.",
            ]
        )
    )
    assert result.cause is ExitCause.BUFFER_ALLOCATION


# ------------------------------------------------------------------------------------- RTSP server


def test_rtsp_connection_refused() -> None:
    # Debian ffmpeg 5.1.9 here: ffmpeg -f lavfi -i testsrc2 -c:v libx264 -f rtsp -rtsp_transport tcp
    # rtsp://127.0.0.1:<closed port>/x; mediamtx#3348 and #605 report the same first line.
    result = classify_exit(
        ffmpeg_only(
            [
                "[tcp @ 0x558c67cbb780] Connection to tcp://127.0.0.1:41705?timeout=0 failed: "
                "Connection refused",
                "Could not write header for output file #0 (incorrect codec parameters ?): "
                "Connection refused",
                "Error initializing output stream 0:0 -- ",
                "Conversion failed!",
            ]
        )
    )
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.summary == (
        "the RTSP server refused the connection (is MediaMTX running?) "
        "(Could not write header for output file #0 (incorrect codec parameters ?): Connection refused)"
    )


def test_rtsp_no_route_to_host() -> None:
    # Debian ffmpeg 5.1.9 here, publishing to an unused address on the local subnet (192.0.2.77).
    result = classify_exit(
        ffmpeg_only(
            [
                "[tcp @ 0x55b37e548780] Connection to tcp://192.0.2.77:8554?timeout=0 failed: No "
                "route to host",
                "Could not write header for output file #0 (incorrect codec parameters ?): No route to host",
                "Error initializing output stream 0:0 -- ",
                "Conversion failed!",
            ]
        )
    )
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.summary.startswith("the RTSP server's host is unreachable (")


def test_rtsp_host_name_does_not_resolve() -> None:
    # Debian ffmpeg 5.1.9 here, publishing to rtsp://mediamtx.invalid:8554/cam: the final line only says
    # "Input/output error"; the tcp line above it names the problem.
    result = classify_exit(
        ffmpeg_only(
            [
                "[tcp @ 0x55aa7f4f0780] Failed to resolve hostname mediamtx.invalid: Name or service "
                "not known",
                "Could not write header for output file #0 (incorrect codec parameters ?): "
                "Input/output error",
                "Error initializing output stream 0:0 -- ",
                "Conversion failed!",
            ]
        )
    )
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.summary == (
        "the RTSP server's host name does not resolve "
        "(Failed to resolve hostname mediamtx.invalid: Name or service not known)"
    )


def test_rtsp_connection_timed_out() -> None:
    # Built from libavformat/network.c ff_connect_parallel: "Connection to %s failed: %s" with
    # strerror(ETIMEDOUT) (the same path as the refused/no-route lines above; nothing here can drop SYNs).
    result = classify_exit(
        ffmpeg_only(
            [
                "[tcp @ 0x55b37e548780] Connection to tcp://192.168.1.10:8554?timeout=0 failed: "
                "Connection timed out",
                "Could not write header for output file #0 (incorrect codec parameters ?): "
                "Connection timed out",
            ]
        )
    )
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.summary.startswith("the RTSP server did not answer (")


def test_rtsp_server_returned_400() -> None:
    # mediamtx#963 (rtsp-simple-server v0.17.8+, ffmpeg publishing an MP4).
    result = classify_exit(
        ffmpeg_only(
            [
                "Could not write header for output file #0 (incorrect codec parameters ?): "
                "Server returned 400 Bad Request",
                "Error initializing output stream 0:0 -- ",
            ]
        )
    )
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.summary.startswith("the RTSP server rejected the stream (")
    assert "Server returned 400 Bad Request" in result.summary


def test_rtsp_announce_rejected() -> None:
    # Debian ffmpeg 5.1.9 here, publishing to a port whose RTSP server refuses ANNOUNCE.
    result = classify_exit(
        ffmpeg_only(
            [
                "[rtsp @ 0x560d67af7500] method ANNOUNCE failed: 405 Method Not Allowed",
                "Could not write header for output file #0 (incorrect codec parameters ?): "
                "Server returned 4XX Client Error, but not one of 40{0,1,3,4}",
                "Error initializing output stream 0:0 -- ",
                "Conversion failed!",
            ]
        )
    )
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert "Server returned 4XX Client Error" in result.summary


def test_rtsp_record_rejected_with_a_misleading_last_line() -> None:
    # Debian ffmpeg 5.1.9 here against rtsp-server-perl, which answered RECORD with 404: ffmpeg's final
    # line blames "invalid data"; only the rtsp line shows the server said no.
    result = classify_exit(
        ffmpeg_only(
            [
                "[rtsp @ 0x5651556123c0] method RECORD failed: 404 Not Found",
                "Could not write header for output file #0 (incorrect codec parameters ?): "
                "Invalid data found when processing input",
                "Error initializing output stream 0:0 -- ",
                "Conversion failed!",
            ]
        )
    )
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.summary == "the RTSP server rejected the stream (method RECORD failed: 404 Not Found)"


def test_rtsp_server_went_away_while_publishing() -> None:
    # mediamtx#2994 (ffmpeg -c copy -f rtsp -rtsp_transport tcp to MediaMTX 1.5.0).
    result = classify_exit(
        ffmpeg_only(
            [
                "av_interleaved_write_frame(): Broken pipe",
                "Error writing trailer of rtsp://127.0.0.1:8554/movies5: Broken pipe",
            ]
        )
    )
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.summary.startswith("the connection to the RTSP server broke")


def test_rtsp_broken_pipe_found_under_ffmpegs_closing_statistics() -> None:
    # Debian ffmpeg 5.1.9 here: publishing testsrc2 with libx264 over UDP to rtsp-server-perl, then the
    # server was stopped. The error is followed by 21 lines of statistics that must not hide it.
    tail = [
        "av_interleaved_write_frame(): Broken pipe",
        "    Last message repeated 47 times",
        "frame=   48 fps= 15 q=-1.0 Lsize=N/A time=00:00:03.00 bitrate=N/A speed=0.921x    ",
        "video:82kB audio:0kB subtitle:0kB other streams:0kB global headers:0kB muxing overhead: unknown",
        "[libx264 @ 0x55b10eb3a640] frame I:1     Avg QP:20.47  size:  4676",
        "[libx264 @ 0x55b10eb3a640] frame P:16    Avg QP:25.59  size:  2299",
        "[libx264 @ 0x55b10eb3a640] frame B:31    Avg QP:29.88  size:  1351",
        "[libx264 @ 0x55b10eb3a640] consecutive B-frames:  4.2% 20.8% 25.0% 50.0%",
        "[libx264 @ 0x55b10eb3a640] mb I  I16..4: 32.0% 44.7% 23.3%",
        "[libx264 @ 0x55b10eb3a640] mb P  I16..4:  2.9%  6.3%  2.2%  P16..4: 13.6% 10.5%  6.7%  0.0%  0.0%"
        "    skip:57.8%",
        "[libx264 @ 0x55b10eb3a640] mb B  I16..4:  0.3%  0.4%  0.2%  B16..8: 20.4%  8.6%  2.3%  direct: 2.7%"
        "  skip:65.2%  L0:51.8% L1:41.8% BI: 6.4%",
        "[libx264 @ 0x55b10eb3a640] 8x8 transform intra:50.4% inter:30.0%",
        "[libx264 @ 0x55b10eb3a640] coded y,uvDC,uvAC intra: 13.2% 31.8% 28.2% inter: 6.5% 16.4% 13.8%",
        "[libx264 @ 0x55b10eb3a640] i16 v,h,dc,p: 75% 21%  4%  0%",
        "[libx264 @ 0x55b10eb3a640] i8 v,h,dc,ddl,ddr,vr,hd,vl,hu: 10% 14% 75%  1%  0%  0%  0%  0%  0%",
        "[libx264 @ 0x55b10eb3a640] i4 v,h,dc,ddl,ddr,vr,hd,vl,hu: 42% 20% 32%  1%  1%  1%  2%  1%  1%",
        "[libx264 @ 0x55b10eb3a640] i8c dc,h,v,p: 54% 16% 29%  1%",
        "[libx264 @ 0x55b10eb3a640] Weighted P-Frames: Y:0.0% UV:0.0%",
        "[libx264 @ 0x55b10eb3a640] ref P L0: 58.4%  6.9% 21.8% 12.9%",
        "[libx264 @ 0x55b10eb3a640] ref B L0: 81.7% 14.3%  4.0%",
        "[libx264 @ 0x55b10eb3a640] ref B L1: 94.4%  5.6%",
        "[libx264 @ 0x55b10eb3a640] kb/s:208.37",
        "Conversion failed!",
    ]
    assert len(tail) > causes.WINDOW  # without the noise filter the error would be out of reach
    result = classify_exit(ffmpeg_only(tail))
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.evidence == "ffmpeg: av_interleaved_write_frame(): Broken pipe"


@pytest.mark.parametrize("version", FFMPEG_VERSIONS)
@pytest.mark.parametrize("capture", ["publisher_server_gone", "publisher_server_gone_tee"])
def test_rtsp_server_gone_in_each_ffmpeg_s_words(version: str, capture: str) -> None:
    # The test-stream publisher the agent builds (plain RTSP output, and the tee beside the key-frame tap)
    # when the RTSP server stops under it; ffmpeg 7.1 (Trixie) exits 224 (-EPIPE & 0xff) with other words
    # than 5.1 (tests/fixtures/ffmpeg/capture.py).
    captured = ffmpeg_capture(version, capture)
    assert captured.exit_status is not None
    result = classify_exit(ffmpeg_only(captured.text.splitlines(), captured.exit_status))
    assert result.cause is ExitCause.RTSP_UNREACHABLE
    assert result.summary.startswith("the connection to the RTSP server broke"), result.summary
    assert result.evidence is not None and "Broken pipe" in result.evidence


@pytest.mark.parametrize("version", FFMPEG_VERSIONS)
def test_capture_card_missing_in_each_ffmpeg_s_words(version: str) -> None:
    # The capture-card publisher the agent builds, started while its /dev node is not there: 7.1 adds
    # three "Error opening input…" lines to 5.1's "Cannot open video device" (tests/fixtures/ffmpeg).
    captured = ffmpeg_capture(version, "card_device_missing")
    assert captured.exit_status is not None
    result = classify_exit(ffmpeg_only(captured.text.splitlines(), captured.exit_status))
    assert result.cause is ExitCause.DEVICE_GONE
    assert result.summary.startswith("the capture device is not there any more"), result.summary


# ----------------------------------------------------------------------------------------- encoder


def test_no_hardware_encoder_for_h264_v4l2m2m() -> None:
    # Debian ffmpeg 5.1.9 here (no bcm2835-codec, as on a Pi 5):
    # ffmpeg -f lavfi -i testsrc2 -c:v h264_v4l2m2m -f null -; also simplest_ffmpeg_video_encoder#3.
    result = classify_exit(
        ffmpeg_only(
            [
                "[h264_v4l2m2m @ 0x55ed7b289380] Could not find a valid device",
                "[h264_v4l2m2m @ 0x55ed7b289380] can't configure encoder",
                "Error initializing output stream 0:0 -- Error while opening encoder for output "
                "stream #0:0 - "
                "maybe incorrect parameters such as bit_rate, rate, width or height",
                "Conversion failed!",
            ]
        )
    )
    assert result.cause is ExitCause.ENCODER_ERROR
    assert result.summary == "no hardware H.264 encoder is available (Could not find a valid device)"


def test_rpicam_hardware_encoder_cannot_be_opened() -> None:
    # iizukanao/picam#208 (Pi 5: rpicam-apps' H264Encoder opens /dev/video11, which does not exist).
    result = classify_exit(
        rpicam_then_ffmpeg(
            [
                "[0:10:05.168185889] [2258]  INFO Camera camera.cpp:1181 configuring streams: (0) "
                "1920x1080-YUV420",
                "ERROR: *** failed to open V4L2 H264 encoder ***",
            ]
        )
    )
    assert result.cause is ExitCause.ENCODER_ERROR
    assert result.summary == "the hardware H.264 encoder cannot be opened (failed to open V4L2 H264 encoder)"


def test_rpicam_no_h264_codec_on_pi5() -> None:
    # rpicam-apps#672 (rpicam-vid on a Pi 5 with the default --codec h264).
    result = classify_exit(rpicam_then_ffmpeg(["ERROR: *** Unable to find an appropriate H.264 codec ***"]))
    assert result.cause is ExitCause.ENCODER_ERROR


def test_rpicam_libav_codec_fails_to_open() -> None:
    # rpicam-apps#643 (rpicam-vid --codec libav after a Bookworm update).
    result = classify_exit(rpicam_then_ffmpeg(["ERROR: *** libav: unable to open video codec: -22 ***"]))
    assert result.cause is ExitCause.ENCODER_ERROR
    assert result.summary == "the video encoder failed to start (libav: unable to open video codec: -22)"


def test_libx264_rejects_odd_width() -> None:
    # Debian ffmpeg 5.1.9 here: ffmpeg -f lavfi -i testsrc2 -c:v libx264 -vf scale=321:241 -f null -
    # (drawbot#250 shows the "height" variant).
    result = classify_exit(
        ffmpeg_only(
            [
                "[libx264 @ 0x55d8df4e7680] width not divisible by 2 (321x241)",
                "Error initializing output stream 0:0 -- Error while opening encoder for output "
                "stream #0:0 - "
                "maybe incorrect parameters such as bit_rate, rate, width or height",
                "Conversion failed!",
            ]
        )
    )
    assert result.cause is ExitCause.ENCODER_ERROR
    assert result.summary == "the encoder rejected the settings (width not divisible by 2 (321x241))"


def test_output_format_cannot_carry_codec() -> None:
    # Debian ffmpeg 5.1.9 here: ffmpeg -f lavfi -i testsrc2 -c:v rawvideo out.mp4.
    result = classify_exit(
        ffmpeg_only(
            [
                "[mp4 @ 0x5642ca2884c0] Could not find tag for codec rawvideo in stream #0, "
                "codec not currently supported in container",
                "Could not write header for output file #0 (incorrect codec parameters ?): Invalid argument",
            ]
        )
    )
    assert result.cause is ExitCause.ENCODER_ERROR
    assert result.summary.startswith("the output format cannot carry this codec (Could not find tag")


# ------------------------------------------------------------------------------ executable missing


def spawn_error(program: str) -> str:
    """The real message Python gives when exec fails, as the process layer logs it."""
    try:
        subprocess.Popen([program])  # a deliberate failure
    except OSError as exc:
        return str(exc)
    raise AssertionError(f"{program} unexpectedly started")


def test_program_not_installed_is_exit_127(tmp_path: Path) -> None:
    missing = str(tmp_path / "rpicam-vid")
    message = spawn_error(missing)
    assert "No such file or directory" in message
    result = classify_exit(
        make_exit(
            [(RPICAM, message)],
            processes=(proc(RPICAM, causes.EXIT_NOT_FOUND), proc(FFMPEG, 0)),
        )
    )
    assert result.cause is ExitCause.EXECUTABLE_MISSING
    assert result.summary == "rpicam-vid is not installed or not on PATH (install the rpicam-apps package)"
    assert result.evidence == f"rpicam-vid: {message}"


def test_missing_ffmpeg_wins_over_its_partners_errors(tmp_path: Path) -> None:
    # rpicam-vid lost its reader when ffmpeg never started; its complaint is a consequence.
    message = spawn_error(str(tmp_path / "ffmpeg"))
    result = classify_exit(
        make_exit(
            [(FFMPEG, message), (RPICAM, "ERROR: *** failed to allocate capture buffers for stream ***")],
            processes=(proc(RPICAM, 255), proc(FFMPEG, causes.EXIT_NOT_FOUND)),
            first=FFMPEG,
        )
    )
    assert result.cause is ExitCause.EXECUTABLE_MISSING
    assert result.summary.startswith("ffmpeg is not installed")


def test_program_not_executable_is_exit_126(tmp_path: Path) -> None:
    program = tmp_path / "ffmpeg"
    program.write_text("#!/bin/sh\n")
    os.chmod(program, 0o644)
    message = spawn_error(str(program))
    assert "Permission denied" in message
    result = classify_exit(
        make_exit([(FFMPEG, message)], processes=(proc(FFMPEG, causes.EXIT_NOT_EXECUTABLE),), first=FFMPEG)
    )
    assert result.cause is ExitCause.EXECUTABLE_MISSING
    assert result.summary == "ffmpeg cannot be executed (permission denied)"


# ------------------------------------------------------------------------------------ killed, crash

LIBCAMERA_START = [
    # rpicam-apps#828: what rpicam-vid prints while starting; no error.
    "[0:13:57.732391469] [810]  INFO Camera camera_manager.cpp:326 libcamera v0.5.0+59-d83ff0a4",
]


def test_sigkill_not_sent_by_the_agent() -> None:
    # ffmpeg died first (OOM killer); the process layer then SIGTERMed rpicam-vid.
    result = classify_exit(
        make_exit(
            [(RPICAM, line) for line in LIBCAMERA_START],
            processes=(proc(RPICAM, sig=signal.SIGTERM), proc(FFMPEG, sig=signal.SIGKILL)),
            first=FFMPEG,
        )
    )
    assert result.cause is ExitCause.KILLED
    assert result.summary == (
        "ffmpeg was killed by SIGKILL, not sent by the agent (the kernel's out-of-memory killer, or a person)"
    )
    assert result.evidence is None  # nothing error-looking was logged


def test_segfault_is_a_crash() -> None:
    result = classify_exit(
        make_exit(
            [(RPICAM, line) for line in LIBCAMERA_START],
            processes=(proc(RPICAM, sig=signal.SIGSEGV), proc(FFMPEG, 0)),
            first=RPICAM,
        )
    )
    assert result.cause is ExitCause.KILLED
    assert result.summary == "rpicam-vid crashed (SIGSEGV)"


def test_ffmpeg_stopped_by_someone_else() -> None:
    # Debian ffmpeg 5.1.9 here, sent SIGTERM by a person (kill): it catches the signal, prints this
    # and exits 255, so only the log line shows that a signal ended it.
    result = classify_exit(
        make_exit(
            [
                (
                    FFMPEG,
                    "video:38kB audio:0kB subtitle:0kB other streams:0kB global headers:0kB "
                    "muxing overhead: unknown",
                ),
                (FFMPEG, "Exiting normally, received signal 15."),
            ],
            processes=(proc(RPICAM, sig=signal.SIGTERM), proc(FFMPEG, 255)),
            first=FFMPEG,
        )
    )
    assert result == Classification(
        ExitCause.KILLED,
        "ffmpeg was stopped by SIGTERM, not sent by the agent (a person or another program)",
        "ffmpeg: Exiting normally, received signal 15.",
    )


def test_other_signal_on_the_first_process() -> None:
    result = classify_exit(
        make_exit([], processes=(proc(RPICAM, 0), proc(FFMPEG, sig=signal.SIGHUP)), first=FFMPEG)
    )
    assert result.cause is ExitCause.KILLED
    assert (
        result.summary == "ffmpeg was stopped by SIGHUP, not sent by the agent (a person or another program)"
    )


def test_sigpipe_blames_the_reader() -> None:
    # rpicam-vid was reaped first but died of SIGPIPE: its reader, ffmpeg, had already exited (code 1).
    # The ffmpeg line is real: Debian ffmpeg 5.1.9 here, ffmpeg -i pipe: -f null - < 2000 random bytes.
    result = classify_exit(
        make_exit(
            [(FFMPEG, "pipe:: Invalid data found when processing input")],
            processes=(proc(RPICAM, sig=signal.SIGPIPE), proc(FFMPEG, 1)),
            first=RPICAM,
        )
    )
    assert result.cause is ExitCause.UNKNOWN
    assert result.summary == "ffmpeg exited with code 1"
    assert result.evidence == "ffmpeg: pipe:: Invalid data found when processing input"


def test_sigpipe_then_reader_killed() -> None:
    result = classify_exit(
        make_exit(
            [], processes=(proc(RPICAM, sig=signal.SIGPIPE), proc(FFMPEG, sig=signal.SIGKILL)), first=RPICAM
        )
    )
    assert result.cause is ExitCause.KILLED
    assert result.summary.startswith("ffmpeg was killed by SIGKILL")


def test_unknown_order_uses_the_telling_signal() -> None:
    result = classify_exit(
        make_exit(
            [],
            processes=(proc(RPICAM, sig=signal.SIGTERM), proc(FFMPEG, sig=signal.SIGABRT)),
            first=None,
        )
    )
    assert result.cause is ExitCause.KILLED
    assert result.summary == "ffmpeg crashed (SIGABRT)"


# ------------------------------------------------------------------------- stopped, stalled, unknown

REFUSED_TAIL = [
    # Debian ffmpeg 5.1.9 here (see test_rtsp_connection_refused).
    "[tcp @ 0x558c67cbb780] Connection to tcp://127.0.0.1:41705?timeout=0 failed: Connection refused",
    "Could not write header for output file #0 (incorrect codec parameters ?): Connection refused",
]


def test_requested_stop_is_stopped_whatever_the_log_says() -> None:
    # The real SIGTERM exit of Debian ffmpeg 5.1.9 (exit 255) after an error-looking tail.
    result = classify_exit(
        make_exit(
            [(FFMPEG, line) for line in [*REFUSED_TAIL, "Exiting normally, received signal 15."]],
            processes=(proc(RPICAM, sig=signal.SIGTERM), proc(FFMPEG, 255)),
            first=FFMPEG,
            requested=True,
        )
    )
    assert result == Classification(ExitCause.STOPPED, "stopped on request", None)


def test_stall_wins_over_requested_and_keeps_the_detail() -> None:
    # The supervisor killed a frozen rpicam-vid (a requested stop) that had been retrying after
    # frontend timeouts (rpicam-apps#660).
    result = classify_exit(
        make_exit(
            [
                (
                    RPICAM,
                    "[5:00:54.982184292] [2324] ERROR RPI pipeline_base.cpp:1424 Camera frontend has "
                    "timed out!",
                ),
                (RPICAM, "ERROR: Device timeout detected, attempting a restart!!!"),
            ],
            processes=(proc(RPICAM, sig=signal.SIGTERM), proc(FFMPEG, 255)),
            requested=True,
        ),
        stalled=True,
    )
    assert result.cause is ExitCause.STALLED
    assert result.summary.startswith("frames stopped: the camera stopped sending frames")
    assert result.evidence is not None and "Camera frontend has timed out!" in result.evidence


def test_stall_without_a_known_pattern() -> None:
    result = classify_exit(
        make_exit([(RPICAM, line) for line in LIBCAMERA_START], requested=True), stalled=True
    )
    assert result.cause is ExitCause.STALLED
    assert result.summary == "frames stopped arriving although the publisher was running; it was restarted"
    assert result.evidence is None


def test_unknown_keeps_the_last_error_looking_line() -> None:
    # Debian ffmpeg 5.1.9 here: ffmpeg -f h264 -i - -f null - < 3000 random bytes (exit 1).
    result = classify_exit(
        ffmpeg_only(
            [
                "Error while decoding stream #0:0: Invalid data found when processing input",
                "Cannot determine format of input stream 0:0 after EOF",
                "Error marking filters as finished",
                "Conversion failed!",
            ]
        )
    )
    assert result.cause is ExitCause.UNKNOWN
    assert result.summary == "ffmpeg exited with code 1"
    assert result.evidence == "ffmpeg: Error marking filters as finished"


def test_unexpected_clean_exit() -> None:
    result = classify_exit(make_exit([], processes=(proc(FFMPEG, 0),), first=FFMPEG))
    assert result == Classification(ExitCause.UNKNOWN, "ffmpeg exited unexpectedly (exit code 0)", None)


def test_old_lines_beyond_the_window_are_ignored() -> None:
    # A busy camera long ago, then many ordinary lines: the busy line no longer explains this exit.
    busy = "/dev/video0: Device or resource busy"  # homebridge-camera-ffmpeg#1401
    ordinary = LIBCAMERA_START * (causes.WINDOW + 1)
    result = classify_exit(ffmpeg_only([busy, *ordinary]))
    assert result.cause is ExitCause.UNKNOWN
    near = classify_exit(ffmpeg_only([busy, *ordinary[: causes.WINDOW - 1]]))
    assert near.cause is ExitCause.DEVICE_BUSY


@pytest.mark.parametrize("tail", [(), ("",), ("   ",), ("\x00\xff garbage",)])
def test_odd_input_never_raises(tail: tuple[str, ...]) -> None:
    exit_info = ExitInfo(processes=(), first=None, runtime_s=0.0, requested=False, log_tail=tail)
    result = classify_exit(exit_info)
    assert result.cause is ExitCause.UNKNOWN
    assert result.summary == "the publisher exited for an unknown reason"
