"""The font the test patterns' clock is drawn with: found once, by looking at files, never by running a
program.

ffmpeg's ``drawtext`` needs a font file. Debian's and Raspberry Pi OS's ffmpeg is built with fontconfig and
freetype, and fontconfig-config depends on a font (fonts-dejavu-core first), so a Pi that has ffmpeg has
one of these. When none is found the pipelines draw a moving box instead of the clock (see
:func:`pi_stream_agent.streams.pipelines.moving_overlay`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from typing import Final

# Monospaced first (the clock's digits keep their place), in the order Debian's fontconfig-config lists
# its font alternatives.
FONT_CANDIDATES: Final = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeMono.ttf",
    "/usr/share/fonts/opentype/freefont/FreeMono.otf",
)
# Characters that would need escaping in an ffmpeg filter graph: a path with any of them is skipped rather
# than escaped, so a font path can never change the meaning of the graph.
_UNSAFE: Final = frozenset("\\'\":,;[]=%{} \t\n")


def usable_font(paths: Iterable[str]) -> str | None:
    """The first of ``paths`` that is a readable file and safe to put in a filter graph as it is."""
    for path in paths:
        if _UNSAFE.isdisjoint(path) and os.path.isfile(path) and os.access(path, os.R_OK):
            return path
    return None


@functools.cache
def clock_font() -> str | None:
    """This machine's font for the test-pattern clock, or None (then a moving box stands in for it)."""
    return usable_font(FONT_CANDIDATES)
