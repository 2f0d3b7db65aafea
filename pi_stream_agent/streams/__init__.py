"""Camera streams: configuration, publisher pipelines, supervision, snapshots and logs.

How the pieces fit (each module has one job; the data passed between them is in ``model.py``):

``config.py``     the stream configuration: voluptuous schema → :class:`~.model.StreamConfig`, and the checks
                  that need the discovered devices and the board (unknown device, unsupported mode, two
                  streams on one camera, duplicate paths, hardware encoder on a Pi 5). Messages name the
                  stream and the field.
``store.py``      where stream configs live (``<state_dir>/streams.yaml``, written atomically; seeded from the
                  ``streams:`` of the agent's config file while it does not exist yet).
``commands.py``   :func:`build_pipeline` — a StreamConfig + :class:`~.model.PublishEnvironment` → a
                  :class:`~.model.PipelineSpec`: argument lists only, never a shell.
``process.py``    :class:`PipelineProcess` — runs one PipelineSpec: every process in one new process group,
                  stdout→stdin pipes between them, a death signal so nothing outlives a SIGKILLed agent, an
                  environment marker so a later agent can find leftovers, stderr into a LogRing,
                  ``-progress`` parsed into :class:`~.model.Progress`; stop = SIGTERM to the group, SIGKILL
                  after a timeout; every child reaped. Also :func:`kill_leftovers`.
``causes.py``     pure: exit codes/signals + last log lines → :class:`~.model.ExitCause`.
``progress.py``   pure: ffmpeg's ``-progress`` blocks and ``-vstats`` frame sizes → :class:`~.model.Progress`
                  (frames, fps, the bitrate the agent measures).
``preflight.py``  before a (re)start: device present, RTSP server reachable, enough CMA (read through the
                  telemetry's reader, which the agent wires in: streams never read /proc/meminfo).
``backoff.py``    pure: exponential backoff with jitter, first retry fast, cap, reset after a stable period.
``supervisor.py`` :class:`StreamSupervisor` per stream: the state machine, stall detection, restarts, every
                  command acted on, and the stream's stats (fps, bitrate, restarts by cause, publishers).
``manager.py``    :class:`StreamManager` for all of them: start/stop/restart, config changes, device
                  hot-plug, events, stats for the telemetry sample; the board/devices/CMA come from the
                  :class:`~.manager.Platform` the agent gives it.
``rtsp_server.py`` the RTSP server (MediaMTX) as a supervised child when configured; publishers wait for it
                  to listen before their first start.
``snapshot.py``   JPEG snapshots decoded from the *published* stream (key frames only), single-flight + cache.
"""
