"""RTSP addresses and the credentials in them: the one place that puts a login into a URL or takes it out."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit


def with_read_credentials(url: str, credentials: Mapping[str, str] | None) -> str:
    """``url`` with the RTSP read credentials as its (percent-encoded) userinfo; unchanged without them."""
    if not credentials or not credentials.get("username"):
        return url
    parts = urlsplit(url)
    userinfo = quote(credentials["username"], safe="")
    if (password := credentials.get("password")) is not None:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{_host_port(parts.netloc)}"))


def without_credentials(value: str, placeholder: str) -> str:
    """``value`` with the userinfo of a URL replaced by ``placeholder``; anything that is not a URL with a
    login (plain text, a URL without one) is returned as it is."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value  # not a URL (an unbalanced "[" in free text, say)
    if not parts.scheme or "@" not in parts.netloc:
        return value
    return urlunsplit(parts._replace(netloc=f"{placeholder}@{_host_port(parts.netloc)}"))


def _host_port(netloc: str) -> str:
    return netloc.rpartition("@")[2]
