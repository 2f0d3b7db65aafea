"""pi_stream agent: supervises a Raspberry Pi's camera publishers and reports its hardware health.

Packages: ``telemetry/`` (hardware health readers), ``discovery/`` (cameras and capture cards), ``streams/``
(stream configuration, publishers and their supervision), ``api/`` (the authenticated HTTP + WebSocket
API, docs/api.md), ``simulation/`` (a plausible Pi 4 on any machine).

Modules: ``agent.py`` starts and stops it all; ``cli.py`` is the command line; ``entry.py`` the program's
entry point (``__main__.py``, ``/usr/bin/pi-stream-agent``), which keeps the unused TLS libraries out first;
``config.py`` the config file's schema, with ``rtsp_config.py`` for its ``rtsp:`` section and
``yamlfile.py`` for reading YAML (both the config file and ``streams.yaml``); ``paths.py`` the default file
locations; ``credentials.py`` the API token; ``identity.py`` the stable agent id; ``events.py`` the
in-process event bus; ``rootfs.py`` reading kernel interfaces below a root; ``fsutil.py`` atomic writes;
``rundirs.py`` per-run scratch directories that the next start removes after a kill;
``zeroconf_ad.py`` the network announcement.
"""

__version__ = "0.1.0"

# Bumped when the HTTP/WebSocket contract changes incompatibly; the integration refuses other majors.
API_VERSION = 1
