"""RTSP URLs: where a stream is published and where readers pull it from, and credentials in URLs.

Credentials go into a URL in exactly one way (:func:`with_credentials`: percent-encoded userinfo) and come
out of any text in exactly one way (:func:`redact`: the userinfo of every URL becomes ``***``), so a
publish URL can be handed to ffmpeg while argument lists, log lines, snapshot errors and API answers never
show a password.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote, urlsplit

from .model import RtspSettings, StreamConfig

RTSP_SCHEMES = ("rtsp", "rtsps")


class RtspUrlError(ValueError):
    """A base URL that is not an rtsp:// or rtsps:// URL, or whose port is not a number."""


# ------------------------------------------------------------------------------------------ building URLs


def _split_authority(url: str) -> tuple[str, str, str, str]:
    """``scheme://userinfo@hostport/rest`` → (scheme, userinfo, hostport, rest); userinfo may be empty."""
    scheme, sep, remainder = url.partition("://")
    if not sep or scheme.lower() not in RTSP_SCHEMES:
        raise RtspUrlError(f"{redact(url)!r} is not an rtsp:// or rtsps:// URL")
    authority, slash, rest = remainder.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    return scheme, userinfo if at else "", hostport, slash + rest


def join_path(base: str, path: str) -> str:
    """``base`` (an rtsp:// or rtsps:// URL) with ``path`` appended after exactly one ``/``."""
    _split_authority(base)  # rejects anything but rtsp:// and rtsps://
    return base.rstrip("/") + "/" + path.lstrip("/")


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with ``user:password@`` (percent-encoded) replacing any userinfo; unchanged without both."""
    if username is None and password is None:
        return url
    scheme, _, hostport, rest = _split_authority(url)
    userinfo = quote(username or "", safe="")
    if password is not None:
        userinfo += ":" + quote(password, safe="")
    return f"{scheme}://{userinfo}@{hostport}{rest}"


def replace_host(url: str, host: str) -> str:
    """``url`` without userinfo, its host replaced by ``host`` (port and path kept)."""
    scheme, _, _, rest = _split_authority(url)
    try:
        port = urlsplit(url).port
    except ValueError as err:
        raise RtspUrlError(f"{redact(url)!r} has an invalid port") from err
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 literal
    return f"{scheme}://{host}{f':{port}' if port is not None else ''}{rest}"


def _stream_path(stream: StreamConfig, substream: bool) -> str:
    if not substream:
        return stream.rtsp_path
    if stream.substream is None:
        raise RtspUrlError(f"stream {stream.id!r} has no substream")
    return stream.substream.rtsp_path


def publish_url(stream: StreamConfig, rtsp: RtspSettings, *, substream: bool = False) -> str:
    """Where the publisher pushes: publish base + path, with the publish credentials if configured.

    Holds credentials: pass through :func:`redact` before logging or showing it.
    """
    url = join_path(rtsp.publish_url, _stream_path(stream, substream))
    return with_credentials(url, rtsp.publish_username, rtsp.publish_password)


def read_url(stream: StreamConfig, rtsp: RtspSettings, host: str, *, substream: bool = False) -> str:
    """Where readers (Home Assistant, NVRs) pull from.

    The read base is ``rtsp.read_url``, or else the publish base with its host replaced by ``host`` (this Pi's
    address as others reach it; the publish base is usually 127.0.0.1) and its publish credentials dropped.
    Read credentials, when configured, are put in percent-encoded.
    """
    base = rtsp.read_url if rtsp.read_url else replace_host(rtsp.publish_url, host)
    url = join_path(base, _stream_path(stream, substream))
    return with_credentials(url, rtsp.read_username, rtsp.read_password)


def read_urls(stream: StreamConfig, rtsp: RtspSettings, host: str) -> dict[str, str]:
    """The ``urls`` of a stream's status: ``main``, and ``sub`` with a substream (see :func:`read_url`)."""
    urls = {"main": read_url(stream, rtsp, host)}
    if stream.substream is not None:
        urls["sub"] = read_url(stream, rtsp, host, substream=True)
    return urls


def local_read_url(stream: StreamConfig, rtsp: RtspSettings, *, substream: bool = False) -> str:
    """Where the agent itself reads its own RTSP server (snapshots): the read base if one is set, else the
    publish base, on the host those name."""
    host = urlsplit(rtsp.read_url or rtsp.publish_url).hostname
    return read_url(stream, rtsp, host or "127.0.0.1", substream=substream)


# ------------------------------------------------------------------------------------ hiding credentials

# Greedy up to the last "@" before the first "/" or blank, so a password with a raw "@" is hidden whole.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s]*@")


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``***`` (for argv, log lines, errors).

    ``rtsp://user:secret@10.0.0.5:8554/cam: Server returned 401`` → ``rtsp://***@10.0.0.5:8554/cam: Server
    returned 401``. The one redactor of the agent: a URL and the text that quotes it are redacted alike.
    """
    if "@" not in text:  # the common case for log lines: no regex work
        return text
    return _USERINFO.sub(r"\1***@", text)


def redacted_argv(argv: Sequence[str]) -> list[str]:
    """``argv`` safe for logs and the API: credentials in URLs replaced by ``***``."""
    return [redact(arg) for arg in argv]
