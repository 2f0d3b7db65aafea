"""The API token: generated on first start, kept in a 0600 file, compared in constant time."""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from pi_stream_agent.fsutil import atomic_write

TOKEN_FILE_NAME = "token"
# 32 random bytes, URL-safe base64: 43 characters, easy to paste into Home Assistant.
_TOKEN_BYTES = 32
_MIN_TOKEN_LENGTH = 16


class TokenError(Exception):
    """The token file exists but cannot be used; the message says what to do."""


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE_NAME


def generate_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def load_or_create_token(state_dir: Path) -> str:
    """Return the stored token, creating it (mode 0600) on first start."""
    path = token_path(state_dir)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return write_new_token(state_dir)
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(f"{path}: cannot be read ({exc}); fix its permissions or delete it to make a new token") from None
    if len(text) < _MIN_TOKEN_LENGTH or any(ch.isspace() for ch in text):
        raise TokenError(
            f"{path}: does not hold a usable token (at least {_MIN_TOKEN_LENGTH} characters, no spaces); "
            "run 'pi-stream-agent token --rotate' to make a new one"
        )
    _tighten_mode(path)
    return text


def write_new_token(state_dir: Path) -> str:
    """Make and store a new token (replacing any old one atomically)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    token = generate_token()
    atomic_write(token_path(state_dir), (token + "\n").encode("ascii"), mode=0o600)
    return token


def _tighten_mode(path: Path) -> None:
    # A token readable by other users is a token anyone on the Pi can use.
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
    except OSError:
        pass


def tokens_match(presented: str, expected: str) -> bool:
    """Constant-time comparison, so response timing reveals nothing about the token."""
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))
