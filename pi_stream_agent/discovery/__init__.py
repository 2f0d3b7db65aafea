"""Camera discovery: V4L2 capture devices (sysfs; v4l2-ctl for formats and controls), CSI cameras and
their controls (``rpicam-hello --list-cameras -v``), ALSA capture devices (``/proc/asound``: alsa.py),
kept current on hot-plug (hotplug.py, registry.py)."""
