"""Where the stream configurations live: ``<state_dir>/streams.yaml``, written atomically by the agent.

The agent's config file (``/etc/pi-stream-agent/config.yaml``) is read-only to the agent under systemd's
``ProtectSystem``, so streams added or changed through the API go to the agent's own state directory. Until
that file exists, the streams come from the config file's ``streams:`` (the *seed*); the first change writes
the file, and from then on it alone counts.

``streams.yaml`` looks like the config file's section, so either can be copied into the other::

    # (header comment)
    streams:
    - id: garage
      source: {type: csi, camera: 0}
      ...

Every write goes through :func:`~pi_stream_agent.fsutil.atomic_write` (a reader or a power cut sees the old
file or the new one), keeps the previous version as ``streams.yaml.bak``, and is refused as a whole when the
resulting list has any problem.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pi_stream_agent.fsutil import atomic_write
from pi_stream_agent.streams.list_checks import structure_problems
from pi_stream_agent.streams.model import StreamConfig
from pi_stream_agent.streams.problems import Problem, StreamConfigError, raise_for_errors
from pi_stream_agent.streams.schema import parse_stream, parse_streams
from pi_stream_agent.streams.serialize import to_json
from pi_stream_agent.yamlfile import YamlFileError, parse_yaml

__all__ = ["STREAMS_FILE", "StreamNotFoundError", "StreamStore", "StreamStoreError", "Validator", "to_json"]

STREAMS_FILE = "streams.yaml"
FILE_MODE = 0o640  # the agent's own; may name capture devices and paths, nothing for other users

HEADER = """\
# Camera streams of pi-stream-agent.
#
# Written by the agent whenever streams change through its API (Home Assistant); the previous version is
# kept in streams.yaml.bak. While this file exists, the streams: of the agent's config file are ignored.
# You may edit it by hand while the agent is stopped (sudo systemctl stop pi-stream-agent); the agent
# rewrites it on the next change through the API, without comments. Keys: docs/configuration.md.
"""

# Checks the whole resulting list against this Pi: ``lambda streams: validate_streams(streams, devices,
# board, simulated=…)``. Errors refuse the change; warnings are kept in ``StreamStore.warnings``.
Validator = Callable[[Sequence[StreamConfig]], Sequence[Problem]]


class StreamStoreError(StreamConfigError):
    """streams.yaml (or the seed) cannot be used: the message names the file, the key path and the fix."""


class StreamNotFoundError(KeyError):
    """No stream has this id."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(stream_id)
        self.stream_id = stream_id

    def __str__(self) -> str:
        return f'no stream has the id "{self.stream_id}"'


class _Dumper(yaml.SafeDumper):
    """Block style, but a source (``{type: csi, camera: 0}``) on one line, as the documentation writes it."""


def _represent_flow_source(dumper: yaml.SafeDumper, data: _FlowMap) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", dict(data), flow_style=True)


class _FlowMap(dict[str, Any]):
    pass


_Dumper.add_representer(_FlowMap, _represent_flow_source)


def dump_streams(streams: Sequence[StreamConfig]) -> bytes:
    """The file's bytes: header comment, then ``streams:`` in :func:`to_json` form."""
    documents = []
    for stream in streams:
        document = to_json(stream)
        document["source"] = _FlowMap(document["source"])
        documents.append(document)
    body = yaml.dump(
        {"streams": documents},
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=110,
    )
    return (HEADER + "\n" + body).encode("utf-8")


class StreamStore:
    """The stream configurations of one agent.

    Not async and small on purpose: a read parses a few hundred bytes (cached until the file changes), a
    write is one atomic file replace. A lock keeps concurrent API requests (or executor threads) from
    interleaving read-modify-write cycles.
    """

    def __init__(
        self,
        state_dir: Path,
        seed: Sequence[Mapping[str, Any]] = (),
        *,
        seed_origin: str = "the agent's config file",
    ) -> None:
        self.path = Path(state_dir) / STREAMS_FILE
        self.backup_path = self.path.with_name(STREAMS_FILE + ".bak")
        self._seed = [dict(item) for item in seed]
        self._seed_origin = seed_origin
        self._lock = threading.RLock()
        self._cache: tuple[tuple[int, int, int], list[StreamConfig]] | None = None
        self.warnings: list[Problem] = []  # of the last upsert

    # -- reading -----------------------------------------------------------------------------------------

    @property
    def uses_file(self) -> bool:
        """True once streams.yaml exists (the seed no longer counts)."""
        return self.path.exists()

    def load(self) -> list[StreamConfig]:
        """The current streams: streams.yaml when it exists, else the seed. Raises :class:`StreamStoreError`
        (naming the file, the key path and the fix) rather than dropping anything it cannot read."""
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                return self._load_seed()
            except OSError as exc:
                raise self._file_error(f"cannot be read: {exc.strerror}") from None
            signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if self._cache is not None and self._cache[0] == signature:
                return list(self._cache[1])
            streams = self._load_file()
            self._cache = (signature, streams)
            return list(streams)

    def get(self, stream_id: str) -> StreamConfig:
        for stream in self.load():
            if stream.id == stream_id:
                return stream
        raise StreamNotFoundError(stream_id)

    def _load_seed(self) -> list[StreamConfig]:
        try:
            return parse_streams(self._seed)
        except StreamConfigError as exc:
            raise StreamStoreError(
                exc.problems, f"{self._seed_origin}: invalid streams (fix them there)"
            ) from None

    def _file_error(self, what: str) -> StreamStoreError:
        sentence = f"The agent's streams file ({self.path}) cannot be used: {what}."
        return StreamStoreError(
            [Problem(str(self.path), "", what, sentence=sentence)], f"{self.path}: cannot be used"
        )

    def _load_file(self) -> list[StreamConfig]:
        fix = f"fix it, or replace it with {self.backup_path.name}, while the agent is stopped"
        try:
            raw = self.path.read_bytes()
        except OSError as exc:
            raise self._file_error(f"cannot be read: {exc.strerror}") from None
        try:
            data = parse_yaml(raw, self.path)
        except YamlFileError as exc:
            # The reader's message starts with the file's path, which _file_error puts in front again.
            what = str(exc).removeprefix(f"{self.path}: ")
            raise self._file_error(f"{what}; {fix}") from None
        if data is None:
            return []  # an empty file: no streams (a person emptied it on purpose)
        if not isinstance(data, dict) or set(data) - {"streams"}:
            raise self._file_error(f"must hold one key, streams:, with a list of streams below it; {fix}")
        try:
            return parse_streams(data.get("streams"))
        except StreamConfigError as exc:
            raise StreamStoreError(exc.problems, f"{self.path}: invalid streams ({fix})") from None

    # -- writing -----------------------------------------------------------------------------------------

    def save(self, streams: Sequence[StreamConfig]) -> None:
        """Write ``streams`` (refused when ids, RTSP paths or sources collide: the file would not load
        back), keeping the previous file as streams.yaml.bak."""
        with self._lock:
            raise_for_errors(structure_problems(list(streams)), "refusing to save streams")
            data = dump_streams(streams)
            try:
                previous: bytes | None = self.path.read_bytes()
            except FileNotFoundError:
                previous = None
            if previous == data:
                return  # nothing changed: keep the older backup
            if previous is not None:
                atomic_write(self.backup_path, previous, mode=FILE_MODE)
            atomic_write(self.path, data, mode=FILE_MODE)
            self._cache = None

    def upsert(self, config: Mapping[str, Any], validator: Validator) -> StreamConfig:
        """Add a stream, or replace the one with the same id (keeping its place). The whole resulting list
        is validated first: on any error nothing is written and :class:`StreamConfigError` lists every
        problem. Warnings are left in :attr:`warnings`."""
        with self._lock:
            self.warnings = []
            current = self.load()
            stream_id = config.get("id") if isinstance(config, Mapping) else None
            position = next((i for i, s in enumerate(current) if s.id == stream_id), len(current))
            stream = parse_stream(dict(config) if isinstance(config, Mapping) else config, position)
            streams = list(current)
            if position < len(streams):
                streams[position] = stream
            else:
                streams.append(stream)
            self.warnings = raise_for_errors(list(validator(streams)))
            self.save(streams)
            return stream

    def remove(self, stream_id: str) -> StreamConfig:
        """Remove a stream (raises :class:`StreamNotFoundError`); returns what was removed. Taking a stream
        away cannot break the others, so it is not held up by their problems."""
        with self._lock:
            current = self.load()
            for index, stream in enumerate(current):
                if stream.id == stream_id:
                    self.save(current[:index] + current[index + 1 :])
                    return stream
            raise StreamNotFoundError(stream_id)
