"""Simulation mode: a plausible Raspberry Pi 4 on any machine.

The collectors read kernel interfaces below a :class:`~pi_stream_agent.rootfs.Root`, so simulating a Pi is
a generated root tree (from real captures), a simulated firmware transport, and a task that moves the
values — the real parsers do the rest::

    pi = build_simulated_root(Path("/tmp/pi"), seed=1)
    reader = FirmwareReader(pi.root, transport=pi.gencmd)
    task = asyncio.create_task(pi.run())
    pi.trigger_under_voltage(3.0)
    ...
    pi.stop()
    await task

Its camera (a Camera Module 3) and USB HDMI capture card are in the tree too; ``pi.tools`` answers the
``rpicam-hello``/``v4l2-ctl`` calls discovery makes with recorded outputs of real ones (``devices.py``).

A simulating agent builds its tree in a per-run directory (``rundir.py``) that the next start removes if
the run was killed.
"""

from pi_stream_agent.simulation.gencmd import SimulatedGencmd
from pi_stream_agent.simulation.model import SimulationConfig
from pi_stream_agent.simulation.pi import SimulatedPi, build_simulated_root
from pi_stream_agent.simulation.rundir import make_run_dir

__all__ = ["SimulatedGencmd", "SimulatedPi", "SimulationConfig", "build_simulated_root", "make_run_dir"]
