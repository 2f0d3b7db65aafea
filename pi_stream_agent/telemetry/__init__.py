"""Telemetry collectors.

Contract shared by every collector module here:

* A **pure parser** (``parse_*``) takes text or bytes and returns a dataclass; it does no I/O and never
  raises on odd input (unknown lines are skipped, missing fields become ``None``).
* A thin **reader** class takes a :class:`~pi_stream_agent.rootfs.Root` (and whatever else it needs) in its
  constructor and offers ``sample(gaps, now) -> dict``: the JSON fragment of the telemetry sample it owns,
  with **every key present** (``None`` when unknown) and the reason for each ``None`` recorded in
  :class:`~pi_stream_agent.rootfs.Gaps` under its dotted key path. ``now`` is ``time.monotonic()``, used for
  rates (always divide by the real elapsed time between two samples). ``sample`` never raises for a missing
  file, a permission error, an unexpected format or a non-Pi machine.
* Units are in the key names: ``_bytes``, ``_bytes_per_s``, ``_hz``, ``_v``, ``_c``, ``_s``, ``_per_s``.

The sampler (``sampler.py``) merges the fragments into one sample; see ``docs/api.md`` for the layout.
``stack.py`` builds the collectors. Besides the board, memory, DMA-buf, firmware, throttle, power, CPU and
network readers: ``storage.py`` (root filesystem), ``kernel_events.py`` (OOM kills and storage errors from the
kernel log the power watch follows), ``supply.py`` (Pi 5 PMIC and 5 A supply), ``fan.py``, ``boot.py`` (last
boot, unexpected reboot); ``exit_context.py`` turns what they hold into a stream exit's context and
contributing condition.
"""
