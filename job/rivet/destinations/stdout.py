"""stdout: a streaming-only destination. Bytes cannot be taken back, so there is no manifest, marker or resume."""

from __future__ import annotations

import sys
from typing import BinaryIO, NoReturn

from rivet.contract.objects import ObjectInfo
from rivet.errors import DestinationError


def _refuse(operation: str) -> NoReturn:
    raise DestinationError(
        f"stdout is a streaming destination: {operation} is not supported "
        "(no manifest, _SUCCESS, resume or chunked mode; use local, s3, gcs or azure)"
    )


class StdoutPartUpload:
    """Writes straight through; abort can only stop writing, bytes already sent stay sent."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._done = False

    def write(self, data: bytes) -> int:
        if self._done:
            raise DestinationError("stdout write after commit or abort")
        try:
            return self._stream.write(data)
        except OSError as exc:  # e.g. the reader closed the pipe
            raise DestinationError(
                f"stdout write failed: {exc.strerror or exc} (is the reader still running?)"
            ) from exc

    def commit(self, content_md5: bytes | None = None) -> None:
        self._done = True
        try:
            self._stream.flush()
        except OSError as exc:
            raise DestinationError(f"stdout flush failed: {exc.strerror or exc}") from exc

    def abort(self) -> None:
        self._done = True


class StdoutDestination:
    kind = "stdout"

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream

    def uri(self) -> str:
        return "stdout:"

    def check(self) -> None:
        """Nothing to check: stdout is always there."""

    def open_part(self, key: str, replace: ObjectInfo | None = None) -> StdoutPartUpload:
        """A stream has no key to fence: `replace` is accepted and ignored."""
        return StdoutPartUpload(self._stream if self._stream is not None else sys.stdout.buffer)

    def put_bytes(self, key: str, data: bytes) -> None:
        _refuse(f"writing {key}")

    def get_bytes(self, key: str, limit: int | None = None) -> bytes | None:
        _refuse(f"reading {key}")

    def head(self, key: str) -> ObjectInfo | None:
        _refuse(f"inspecting {key}")

    def list(self) -> list[ObjectInfo]:
        _refuse("listing")

    def copy(self, src_key: str, dst_key: str) -> None:
        _refuse(f"copying {src_key}")

    def delete(self, key: str) -> None:
        _refuse(f"deleting {key}")
