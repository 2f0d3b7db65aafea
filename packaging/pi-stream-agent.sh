#!/usr/bin/python3
# /usr/bin/pi-stream-agent of the Debian package: the agent lives in the system's dist-packages.
import sys

from pi_stream_agent.cli import main

sys.exit(main())
