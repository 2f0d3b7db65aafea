"""The API token file, the agent's stable id, and the atomic writes both rely on."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pi_stream_agent.credentials import (
    TokenError,
    load_or_create_token,
    token_path,
    tokens_match,
    write_new_token,
)
from pi_stream_agent.fsutil import atomic_write
from pi_stream_agent.identity import AGENT_ID_FILE_NAME, stable_agent_id
from pi_stream_agent.paths import DEFAULT_STATE_DIR
from pi_stream_agent.rootfs import Root
from pi_stream_agent.telemetry.board import BoardReader
from tests.agent.helpers import FixtureTree
from tests.agent.pi_trees import build_pi3bplus_tree


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """umask 000, so a mode that comes out right was set on purpose, not inherited from the umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


# --- token --------------------------------------------------------------------------------------------------


def test_token_is_made_once_0600_in_a_new_state_dir(tmp_path: Path, loose_umask: None) -> None:
    state = tmp_path / "a" / "state"
    token = load_or_create_token(state)
    assert len(token) == 43 and token.isascii() and " " not in token
    assert mode_of(token_path(state)) == 0o600
    assert mode_of(state) == 0o750
    assert token_path(state).read_text() == token + "\n"
    assert load_or_create_token(state) == token
    assert sorted(p.name for p in state.iterdir()) == ["token"]


def test_tokens_are_random(tmp_path: Path) -> None:
    assert len({load_or_create_token(tmp_path / str(n)) for n in range(20)}) == 20


def test_a_token_readable_by_others_is_tightened_to_0600(tmp_path: Path) -> None:
    token = load_or_create_token(tmp_path)
    token_path(tmp_path).chmod(0o644)
    assert load_or_create_token(tmp_path) == token
    assert mode_of(token_path(tmp_path)) == 0o600


def test_a_hand_written_token_with_surrounding_whitespace_is_used(tmp_path: Path) -> None:
    token_path(tmp_path).write_text("  my-own-token-0123456789  \n\n")
    assert load_or_create_token(tmp_path) == "my-own-token-0123456789"


def test_rotate_replaces_the_token(tmp_path: Path) -> None:
    old = load_or_create_token(tmp_path)
    new = write_new_token(tmp_path)
    assert new != old
    assert load_or_create_token(tmp_path) == new
    assert mode_of(token_path(tmp_path)) == 0o600


@pytest.mark.parametrize(
    "content",
    [b"", b"\n", b"short\n", b"has a space inside it\n", b"tab\tinside-the-token-here\n", "é" * 20 + "\n"],
    ids=["empty", "blank", "short", "space", "tab", "non-ascii"],
)
def test_unusable_token_file_says_which_file_and_how_to_fix_it(content: bytes | str, tmp_path: Path) -> None:
    raw = content.encode("utf-8") if isinstance(content, str) else content
    token_path(tmp_path).write_bytes(raw)
    with pytest.raises(TokenError) as caught:
        load_or_create_token(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{token_path(tmp_path)}: does not hold a usable token")
    assert message.endswith(f"run 'pi-stream-agent token --rotate --state-dir {tmp_path}' to make a new one")
    assert token_path(tmp_path).read_bytes() == raw  # left for the person to look at


def test_fix_for_the_default_state_dir_needs_no_state_dir_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    def short_token(self: Path) -> bytes:
        assert self == DEFAULT_STATE_DIR / "token"
        return b"x\n"

    monkeypatch.setattr(Path, "read_bytes", short_token)
    with pytest.raises(TokenError, match=r"run 'pi-stream-agent token --rotate' to make a new one$"):
        load_or_create_token(DEFAULT_STATE_DIR)


def test_token_path_that_is_a_directory(tmp_path: Path) -> None:
    token_path(tmp_path).mkdir()
    with pytest.raises(TokenError, match=r"token: cannot be read \(Is a directory\); delete it"):
        load_or_create_token(tmp_path)


def test_permission_errors_name_the_token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # (test_cli.py checks the same for real, with the mode bits; here the temporary file's name must not
    # leak into the message.)
    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied", str(tmp_path / ".token.abc123.tmp"))

    monkeypatch.setattr("pi_stream_agent.fsutil.tempfile.mkstemp", refuse)
    with pytest.raises(PermissionError) as caught:
        load_or_create_token(tmp_path)
    assert caught.value.filename == str(token_path(tmp_path))


def test_tokens_match() -> None:
    assert tokens_match("abc-DEF_123", "abc-DEF_123")
    assert not tokens_match("abc-DEF_124", "abc-DEF_123")
    assert not tokens_match("", "abc-DEF_123")
    assert not tokens_match("abc-DEF_123\udcff", "abc-DEF_123")  # undecodable header bytes: no exception
    assert not tokens_match("ä" * 11, "abc-DEF_123")


# --- agent id -----------------------------------------------------------------------------------------------


def digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"pi_stream:{kind}:{value}".encode()).hexdigest()[:16]


def test_id_from_the_pi3bplus_serial_is_stable_and_hides_the_serial(
    tree: FixtureTree, tmp_path: Path
) -> None:
    build_pi3bplus_tree(tree)
    serial = BoardReader(Root(tree.base)).serial
    assert serial == "0000000056ee0f6d"  # cpuinfo/pi3bplus_arm64_a020d3.txt "Serial : 0000000056ee0f6d"
    agent_id = stable_agent_id(Root(tree.base), tmp_path / "state", serial)
    assert agent_id == digest("serial", "0000000056ee0f6d")
    assert "56ee0f6d" not in agent_id
    assert stable_agent_id(Root(tree.base), tmp_path / "other", serial.upper()) == agent_id
    assert not (tmp_path / "state").exists()  # nothing needs storing when the board has a serial


# machine-id(5): 32 lower-case hexadecimal characters and a newline (no Pi capture holds one).
MACHINE_ID = "4f2e6a1c9d0b4e7f8a3c5d6e7f809112"


@pytest.mark.parametrize("relative", ["etc/machine-id", "var/lib/dbus/machine-id"])
def test_without_a_serial_the_machine_id_is_used(relative: str, tree: FixtureTree, tmp_path: Path) -> None:
    tree.write(relative, MACHINE_ID + "\n")
    for serial in (None, "", "0000000000000000"):  # all-zero: boards without a burnt-in serial
        assert stable_agent_id(Root(tree.base), tmp_path / "state", serial) == digest(
            "machine-id", MACHINE_ID
        )
    assert not (tmp_path / "state").exists()


def test_without_serial_or_machine_id_a_random_id_is_stored(tree: FixtureTree, tmp_path: Path) -> None:
    tree.write("etc/machine-id", "\n")  # empty, as on an image prepared for cloning
    first = stable_agent_id(Root(tree.base), tmp_path / "one", None)
    assert len(first) == 16 and int(first, 16) >= 0
    assert (tmp_path / "one" / AGENT_ID_FILE_NAME).read_text() == first + "\n"
    assert stable_agent_id(Root(tree.base), tmp_path / "one", None) == first
    assert stable_agent_id(Root(tree.base), tmp_path / "two", None) != first


def test_simulated_agents_differ_per_state_dir_even_on_one_board(tree: FixtureTree, tmp_path: Path) -> None:
    build_pi3bplus_tree(tree)
    tree.write("etc/machine-id", MACHINE_ID + "\n")
    serial = "0000000056ee0f6d"
    ids = [stable_agent_id(Root(tree.base), tmp_path / f"sim{n}", serial, simulated=True) for n in range(3)]
    assert len(set(ids)) == 3
    assert digest("serial", serial) not in ids and digest("machine-id", MACHINE_ID) not in ids
    assert stable_agent_id(Root(tree.base), tmp_path / "sim1", serial, simulated=True) == ids[1]


@pytest.mark.parametrize("stored", ["", "has spaces in it", "x" * 65, "\u00e9t\u00e9"])
def test_an_unusable_stored_id_is_replaced(
    stored: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / AGENT_ID_FILE_NAME
    path.write_text(stored + "\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        new = stable_agent_id(Root(tmp_path / "empty-root"), tmp_path, None, simulated=True)
    assert new != stored and len(new) == 16
    assert path.read_text() == new + "\n"
    assert f"{path} does not hold a usable agent id" in caplog.text


def test_a_hand_set_stored_id_is_kept(tmp_path: Path) -> None:
    (tmp_path / AGENT_ID_FILE_NAME).write_text("kitchen-pi_2\n")
    assert stable_agent_id(Root(tmp_path / "empty-root"), tmp_path, None, simulated=True) == "kitchen-pi_2"


# --- fsutil.atomic_write ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o644])
def test_atomic_write_sets_the_mode_whatever_the_umask(mode: int, tmp_path: Path) -> None:
    previous = os.umask(0o077)
    try:
        atomic_write(tmp_path / "new" / "file", b"data\n", mode=mode)
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "new" / "file") == mode
    assert (tmp_path / "new" / "file").read_bytes() == b"data\n"


def test_atomic_write_replaces_by_rename(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old\n")
    reader = path.open("rb")  # a reader that opened the old file keeps seeing all of it
    old_inode = path.stat().st_ino
    atomic_write(path, b"new\n", mode=0o600)
    assert path.read_bytes() == b"new\n"
    assert path.stat().st_ino != old_inode
    assert reader.read() == b"old\n"
    reader.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_atomic_write_failure_leaves_the_old_file_and_no_temporary(
    failing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"old\n")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(f"pi_stream_agent.fsutil.os.{failing}", broken)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, b"new\n")
    monkeypatch.undo()
    assert path.read_bytes() == b"old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
