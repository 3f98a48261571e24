"""One error hierarchy so every command maps failures to the same exit codes and one-line messages.

`permanent` tells the operator whether retrying a chunk Job can help (bad SQL, auth, config: no).
Messages must never contain credentials: build them from redacted values only.
"""

from __future__ import annotations


class RivetError(Exception):
    """Base: a one-line, user-facing message; exit code 1 unless it is a usage error."""

    exit_code = 1
    permanent = True
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(RivetError):
    """Wrong command-line usage (exit 2)."""

    exit_code = 2
    kind = "usage"


class ConfigError(RivetError):
    """Invalid export definition; the message starts with the field path (`exports[0].destination.bucket`)."""

    kind = "config"

    def __init__(self, path: str, problem: str, fix: str = "") -> None:
        text = f"{path}: {problem}" if path else problem
        if fix:
            text += f" ({fix})"
        super().__init__(text)
        self.path = path


class SourceError(RivetError):
    """The database refused or failed. `permanent=False` for connection drops worth retrying."""

    kind = "source"

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


class UnsupportedTypeError(SourceError):
    """A column type the contract cannot map exactly; raised before any byte is written."""

    kind = "unsupported_type"


class DestinationError(RivetError):
    """The object store or file system refused or failed."""

    kind = "destination"

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


class ContractError(RivetError):
    """A contract rule refuses the operation (e.g. `_SUCCESS` present without --force, plan changed)."""

    kind = "contract"

    def __init__(self, message: str, *, reason: str = "ContractViolation") -> None:
        super().__init__(message)
        self.reason = reason
