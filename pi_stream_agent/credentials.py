"""The API token: generated on first start, kept in a 0600 file, compared in constant time."""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from pi_stream_agent.fsutil import atomic_write
from pi_stream_agent.paths import DEFAULT_STATE_DIR

TOKEN_FILE_NAME = "token"  # noqa: S105 - a file name, not a password
# 32 random bytes, URL-safe base64: 43 characters, easy to paste into Home Assistant.
_TOKEN_BYTES = 32
_MIN_TOKEN_LENGTH = 16


class TokenError(Exception):
    """The token file exists but cannot be used; the message says what to do."""


def token_path(state_dir: Path) -> Path:
    return state_dir / TOKEN_FILE_NAME


def generate_token() -> str:
    return secrets.token_urlsafe(_TOKEN_BYTES)


def _rotate_command(state_dir: Path) -> str:
    # Name the state dir when it is not the default: a bare `token --rotate` would fix another file.
    extra = "" if state_dir == DEFAULT_STATE_DIR else f" --state-dir {state_dir}"
    return f"pi-stream-agent token --rotate{extra}"


def load_or_create_token(state_dir: Path) -> str:
    """Return the stored token, creating it (mode 0600) on first start.

    Raises TokenError when the file holds no usable token, PermissionError (naming the token file) when
    it cannot be read or written."""
    path = token_path(state_dir)
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        # No token yet. (A state dir below a file fails in write_new_token, naming the path.)
        return write_new_token(state_dir)
    except PermissionError as exc:
        raise PermissionError(exc.errno, exc.strerror, str(path)) from None
    except OSError as exc:
        raise TokenError(
            f"{path}: cannot be read ({exc.strerror}); delete it, or run '{_rotate_command(state_dir)}'"
        ) from None
    text = raw.decode("ascii", errors="replace").strip()
    # isprintable() rejects tabs and newlines inside; non-ASCII bytes were decoded to U+FFFD (not ASCII).
    if len(text) < _MIN_TOKEN_LENGTH or not text.isascii() or not text.isprintable() or " " in text:
        raise TokenError(
            f"{path}: does not hold a usable token (at least {_MIN_TOKEN_LENGTH} ASCII characters, "
            f"no spaces); run '{_rotate_command(state_dir)}' to make a new one"
        )
    _tighten_mode(path)
    return text


def write_new_token(state_dir: Path) -> str:
    """Make and store a new token (replacing any old one atomically). A PermissionError names the token
    file, not the temporary file beside it that could not be created."""
    path = token_path(state_dir)
    token = generate_token()
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        atomic_write(path, (token + "\n").encode("ascii"), mode=0o600)
    except PermissionError as exc:
        raise PermissionError(exc.errno, exc.strerror, str(path)) from None
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
