"""A firmware transport for the simulated Pi: answers gencmd commands from the simulated state.

It implements :class:`pi_stream_agent.telemetry.firmware.GencmdTransport` (``name``, ``query``) and answers
the command strings :class:`~pi_stream_agent.telemetry.firmware.FirmwareReader` sends, in the firmware's
own reply format (what ``vcgencmd`` prints). Refused commands raise :class:`GencmdError` like the mailbox
transport does, with the firmware's messages.
"""

from __future__ import annotations

from pi_stream_agent.simulation.model import PiState
from pi_stream_agent.telemetry.firmware import GencmdError

# Clock replies: (clock id as the BCM2711 firmware prints it, Hz).
#   arm  48, 1500398464 — vcgencmd/pi4_expected_values_caron_script.txt (Pi 4 at its 1.5 GHz default)
#   core  1,  500000992 — same file (and v3d 46 prints the same rate there)
#   h264 28,  500000992 — no Pi 4 capture of this clock: id 28 is what VC4 firmware prints
#                         (vcgencmd/pi_1.1ghz_measure_clock_all_italian_transcript.txt) and the Pi 4 runs
#                         its GPU blocks at the 500 MHz core rate (adapted, not captured).
_CLOCKS: dict[str, tuple[int, int]] = {
    "arm": (48, 1_500_398_464),
    "core": (1, 500_000_992),
    "h264": (28, 500_000_992),
    "v3d": (46, 500_000_992),
}
# volt=0.8700V: the Pi 4 core voltage in vcgencmd/pi4_expected_values_caron_script.txt (4 decimals as
# the firmware prints them).
_CORE_VOLTS = "volt=0.8700V"

NOT_REGISTERED = 'error=1 error_msg="Command not registered"'
INVALID_ARGUMENTS = 'error=2 error_msg="Invalid arguments"'


class SimulatedGencmd:
    """gencmd against a :class:`PiState`: the temperature is the thermal zone's, the throttle word the
    under-voltage episode's. ``queries`` counts the calls (the tests use it; it costs nothing)."""

    name = "simulated"
    needs_subprocess = False

    def __init__(self, state: PiState) -> None:
        self._state = state
        self.queries = 0

    def query(self, command: str) -> str:
        self.queries += 1
        words = command.split()
        if not words:
            raise GencmdError(f"firmware refused {command!r}: {NOT_REGISTERED}")
        verb, args = words[0], words[1:]
        if verb == "measure_temp" and not args:
            # The firmware reads the same sensor as the thermal zone, printed to 0.1 °C.
            return f"temp={self._state.temperature_mc / 1000:.1f}'C"
        if verb == "measure_volts" and args in ([], ["core"]):
            return _CORE_VOLTS  # no argument means core (vcgencmd.1)
        if verb == "measure_clock" and len(args) == 1 and args[0] in _CLOCKS:
            clock_id, hz = _CLOCKS[args[0]]
            return f"frequency({clock_id})={hz}"
        if verb == "get_throttled" and not args:
            return f"throttled=0x{self._state.throttled:x}"
        if verb in ("measure_temp", "measure_volts", "measure_clock", "get_throttled"):
            raise GencmdError(f"firmware refused {command!r}: {INVALID_ARGUMENTS}")
        raise GencmdError(f"firmware refused {command!r}: {NOT_REGISTERED}")

    def close(self) -> None:
        """Nothing held open."""
