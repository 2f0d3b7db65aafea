#!/usr/bin/python3
# /usr/bin/pi-stream-agent of the Debian package: the agent lives in the system's dist-packages.
# pi_stream_agent.entry, not .cli: it keeps the TLS libraries the agent never uses out of memory first.
import sys

from pi_stream_agent.entry import main

sys.exit(main())
