"""Camera streams: configuration, publisher pipelines, supervision, snapshots and logs.

How the pieces fit (each module has one job; the data passed between them is in ``model.py``):

``config.py``     the stream configuration: voluptuous schema → :class:`~.model.StreamConfig`, and the checks
                  that need the discovered devices and the board (unknown device, unsupported mode, two
                  streams on one camera, duplicate paths, hardware encoder on a Pi 5). Messages name the
                  stream and the field.
``store.py``      where stream configs live (``<state_dir>/streams.yaml``, written atomically; seeded from the
                  ``streams:`` of the agent's config file while it does not exist yet).
``pipelines.py``  :func:`build_pipeline` — a StreamConfig + :class:`~.model.PublishEnvironment` → a
                  :class:`~.model.PipelineSpec`: argument lists only, never a shell.
``fonts.py``      the font the test patterns' clock is drawn with (looked up once, no program run).
``urls.py``       where a stream is published and read (RTSP URLs with percent-encoded credentials), and
                  :func:`redact`, the one way credentials in URLs are hidden from logs, errors and the API.
``process.py``    :class:`PipelineProcess` — runs one PipelineSpec: every process in one new process group,
                  stdout→stdin pipes between them, a death signal so nothing outlives a SIGKILLed agent, an
                  environment marker so a later agent can find leftovers, stderr into a LogRing,
                  ``-progress`` parsed into :class:`~.model.Progress`; stop = SIGTERM to the group, SIGKILL
                  after a timeout; every child reaped. Also :func:`kill_leftovers`.
``causes.py``     pure: exit codes/signals + last log lines → :class:`~.model.ExitCause`.
``preflight.py``  before a (re)start: device present, RTSP server reachable, enough CMA.
``backoff.py``    pure: exponential backoff with jitter, first retry fast, cap, reset after a stable period.
``supervisor.py`` :class:`StreamSupervisor` per stream (the state machine, stall detection, restarts) and
                  :class:`StreamManager` for all of them (start/stop/restart, device hot-plug, events).
``snapshot.py``   JPEG snapshots decoded from the *published* stream (key frames only), single-flight + cache.
"""
