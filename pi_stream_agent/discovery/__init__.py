"""Camera discovery: V4L2 capture devices from sysfs, CSI cameras from ``rpicam-hello --list-cameras``."""
