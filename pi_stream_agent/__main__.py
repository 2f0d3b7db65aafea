"""Entry point for ``python3 -m pi_stream_agent``."""

import sys

from pi_stream_agent.cli import main

sys.exit(main())
