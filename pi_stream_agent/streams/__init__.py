"""Camera streams: configuration, publisher pipelines, supervision, snapshots, motion detection and logs.

How the pieces fit (each module has one job; the data passed between them is in ``model.py``):

Configuration
``fields.py``       the vocabulary and limits a stream is written in, with human names (source types, test
                    patterns, input formats, encoders, field labels, the id and RTSP path patterns), and
                    the check of each single value. The one owner: the schema, the checks and
                    ``GET /api/v1/vocabulary`` (``api/vocabulary.py``) read them from here.
``problems.py``     :class:`Problem` (config-file text + a plain sentence and label for a person) and
                    :class:`StreamConfigError`.
``schema.py``       a stream mapping (YAML or JSON) → :class:`~.model.StreamConfig`; a ``streams:`` list →
                    StreamConfigs; what a stream says about itself that cannot work on any Pi.
``list_checks.py``  the rules of a list: unique ids and RTSP paths, one stream per camera or card.
``fit.py``          the fit of streams to this Pi's devices and board (unknown device, unsupported mode,
                    hardware encoder on a Pi 5), and the device lookups the manager shares.
``settings.py``     the picture settings (rotation, flips, autofocus, exposure, white balance …) and motion
                    detection's (on/off, sensitivity, minimum duration): the one
                    owner of their definitions, names, ranges, the libcamera control each needs and the
                    rpicam-vid option each becomes; published as ``stream_settings`` in the vocabulary.
``controls.py``     what a stream's camera offers (settings narrowed to the camera, a card's V4L2
                    controls, how its picture is turned), the ``GET …/controls`` document, and the check
                    of a change against the camera.
``v4l2_controls.py`` a card's V4L2 control values checked as the driver would, and ``v4l2-ctl`` argument
                    lists to set and read them (run without a shell).
``audio.py``        a stream's sound, one module: its ``audio:`` config and vocabulary, which ALSA device it
                    resolves to (``auto``: the card's own) or why none, the ffmpeg arguments (ALSA input,
                    encoders, the level meter), the meter's lines on stderr, and the ``sound`` detector.
``serialize.py``    a StreamConfig ↔ the JSON form the API returns and accepts back.
``store.py``        where stream configs live (``<state_dir>/streams.yaml``, written atomically; seeded from
                    the ``streams:`` of the agent's config file while it does not exist yet).

Running
``manager.py``      :class:`StreamManager` — all streams of the agent: one supervisor each, config changes
                    (validated, stored, only changed streams restarted), picture controls (checked,
                    stored, V4L2 set live and again after every start, the rest by a fast restart),
                    hot-plug routing, status with URLs, stats for the telemetry sample; the Pi's side
                    of things comes from the :class:`~.platform.Platform` the agent gives it.
``platform.py``     :class:`Platform` — this Pi as the streams see it: devices, board, CMA, process tracking,
                    and what follows from them (a stream's device node, whether its card is plugged in, its
                    camera index, the environment its pipeline is built in).
``supervisor.py``   :class:`StreamSupervisor` per stream: the state machine (pre-flight, spawn, watch, stall
                    detection judged by what ffmpeg wrote, classify the exit, back off or wait for the
                    device), every command acted on, and the stream's stats (fps, bitrate, restarts by cause,
                    sound level); a sound card that will not open → video only at once; ``sound`` events.
``pipelines.py``    :func:`build_pipeline` — a StreamConfig + :class:`~.model.PublishEnvironment` → a
                    :class:`~.model.PipelineSpec`: argument lists only, never a shell; the picture
                    settings as rpicam-vid options, or as ffmpeg flip filters for cards and patterns.
``fonts.py``        the font the test patterns' clock is drawn with (looked up once, no program run).
``urls.py``         where a stream is published and read (RTSP URLs with percent-encoded credentials), and
                    :func:`redact`, the one way credentials in URLs are hidden from logs, errors and the API.
``process.py``      :class:`PipelineProcess` — runs one PipelineSpec: every process in one new process group,
                    stdout→stdin pipes between them, a death signal so nothing outlives a SIGKILLed agent, an
                    environment marker so a later agent can find leftovers, stderr into a LogRing,
                    ``-progress`` (stdout) and ``-vstats`` (a pipe of their own) parsed into
                    :class:`~.model.Progress`; stop = SIGTERM to the group, SIGKILL
                    after a timeout; every child reaped. Also :func:`kill_leftovers`.
``progress.py``     pure: ffmpeg's ``-progress`` blocks and ``-vstats`` frame sizes →
                    :class:`~.model.Progress` (frames, fps, the bitrate the agent measures).
``causes.py``       pure: exit codes/signals + last log lines → :class:`~.model.ExitCause` (the words of
                    ffmpeg 5.1 and 7.1, rpicam-apps and libcamera; tests/fixtures/ffmpeg has ffmpeg's).
``preflight.py``    before a (re)start: device present, RTSP server reachable, enough CMA (read through the
                    telemetry's reader, which the agent wires in: streams never read /proc/meminfo).
``backoff.py``      pure: exponential backoff with jitter, first retry fast, cap, reset after a stable period.
``rtsp_server.py``  the RTSP server (MediaMTX) as one more supervised child, when the config names it, in
                    the streams' states and exits; publishers wait for it to listen before their first start.
``keyframes.py``    the key-frame tap: where the publisher leaves each stream's newest key frame (a private
                    tmpfs directory per agent run), the ffmpeg drop expression, reading a frame and its time.
``snapshot.py``     JPEG snapshots of the *published* stream: the tap's key frame decoded on request (a
                    standby decoder while stills are asked for), else read back over RTSP; single-flight and
                    a cache per key frame.
``motion.py``       pure: motion detection on small grey frames (running background, noise floor,
                    sensitivity → thresholds, region, minimum duration, end hysteresis), in big-integer
                    lanes (no numpy); the region's check.
``motion_tap.py``   the FIFO the publisher writes the grey frames into (made fresh per run in the tap
                    directory) and the agent's non-blocking reader that cuts it into frames.
``motion_service.py`` :class:`MotionService` — a detector per stream with motion detection on, fed by its
                    tap, the ``motion`` events, the picture taken at each motion start (kept 10 minutes).

The agent's own config file (``pi_stream_agent/config.py``) holds the seed ``streams:`` list and the
``rtsp:`` section (``pi_stream_agent/rtsp_config.py``).
"""
