"""Entry point for ``python3 -m pi_stream_agent`` (entry.py says what it does before the CLI loads)."""

import sys

from pi_stream_agent.entry import main

sys.exit(main())
