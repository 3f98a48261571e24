"""One error hierarchy, and the one place that turns an outcome into the `rivet` exit code.

`permanent` tells the operator whether retrying a chunk Job can help (bad SQL, auth, config: no).
Messages must never contain credentials: build them from redacted values only.

Exit codes, the same for every command (`exit_code_for` maps an error, `combine` several outcomes):

| code | meaning | raised as |
|---|---|---|
| 0 | success | |
| 1 | permanent failure: bad config, bad SQL, authentication, refused by the contract (`_SUCCESS` present, plan changed, ...), refused values | any `RivetError` whose `permanent` is True, unless a row below applies |
| 2 | usage error: wrong flags or arguments | `UsageError` |
| 3 | retryable failure: connection dropped or stalled, timeout, throttled, interrupted by SIGTERM; running the same command again may succeed | any `RivetError` whose `permanent` is False; an unexpected internal error (also reported `permanent: false`) |
| 4 | integrity failure: validate found a prefix that does not verify, reconcile counted a mismatch, a committed part is missing or changed (`PartMissing`, `PartMismatch`) | `ContractError` with one of `INTEGRITY_REASONS`; the validate and reconcile verdicts |
| 5 | schema drift: the source schema changed since the run was planned or during it (a resumed or continued run included) | `ContractError` with reason `SchemaChanged` |

When one command has several outcomes (`rivet run` over several exports, `validate` over several
prefixes), `combine` reports the one that most needs a person: usage, then permanent, then schema drift,
then integrity, then retryable. So 3 means that every failure was retryable and rerunning the command is
the whole fix.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK = 0
EXIT_PERMANENT = 1
EXIT_USAGE = 2
EXIT_RETRYABLE = 3
EXIT_INTEGRITY = 4
EXIT_SCHEMA_DRIFT = 5

# ContractError reasons that say stored data no longer matches its record (exit 4) or the source's
# schema moved under a run (exit 5).
INTEGRITY_REASONS = frozenset({"PartMissing", "PartMismatch"})
SCHEMA_DRIFT_REASONS = frozenset({"SchemaChanged"})

# Most urgent first: the code `combine` reports when outcomes differ.
_PRIORITY = (EXIT_USAGE, EXIT_PERMANENT, EXIT_SCHEMA_DRIFT, EXIT_INTEGRITY, EXIT_RETRYABLE)


class RivetError(Exception):
    """Base: a one-line, user-facing message; `exit_code` follows from the class, reason and permanence."""

    permanent = True
    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    @property
    def exit_code(self) -> int:
        return exit_code_for(self)


class UsageError(RivetError):
    """Wrong command-line usage (exit 2)."""

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


class LedgerMismatch(ContractError):
    """The ledger handed to finalize is not the one the operator recorded (a transport ConfigMap was edited):
    retryable, since the operator hands the records over again before the next attempt."""

    permanent = False


class ConcurrentCertify(ContractError):
    """manifest.json or `_SUCCESS` changed under a certifier's conditional write: retryable, the next attempt
    reads the prefix again (and meets `_SUCCESS` if the other writer certified)."""

    permanent = False


def exit_code_for(exc: BaseException) -> int:
    """The exit code for a failure (see the module's table). Anything that is not a RivetError is an
    internal error, which the CLI reports as not permanent, so it maps to 3 like every other retryable one."""
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    if not isinstance(exc, RivetError):
        return EXIT_RETRYABLE
    reason = getattr(exc, "reason", None)
    if isinstance(exc, ContractError) and reason in SCHEMA_DRIFT_REASONS:
        return EXIT_SCHEMA_DRIFT
    if isinstance(exc, ContractError) and reason in INTEGRITY_REASONS:
        return EXIT_INTEGRITY
    return EXIT_PERMANENT if exc.permanent else EXIT_RETRYABLE


def combine(codes: Iterable[int]) -> int:
    """One exit code for several outcomes: 0 if all succeeded, else the most urgent failure."""
    failed = {c for c in codes if c != EXIT_OK}
    for code in _PRIORITY:
        if code in failed:
            return code
    return max(failed, default=EXIT_OK)  # a code outside the table (e.g. 130) still fails the command
