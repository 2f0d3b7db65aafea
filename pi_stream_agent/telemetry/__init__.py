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
"""
