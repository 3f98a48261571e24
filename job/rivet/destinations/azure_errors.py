"""Turn azure-core failures into one-line DestinationErrors that say what to fix and whether to retry."""

from __future__ import annotations

from azure.core import exceptions as az

from rivet.destinations._common import one_line
from rivet.errors import DestinationError

AZURE_ERRORS: tuple[type[Exception], ...] = (az.AzureError,)
_DENIED = {
    "AuthorizationFailure",
    "AuthenticationFailed",
    "AuthorizationPermissionMismatch",
    "InvalidAuthenticationInfo",
}


class AzureErrors:
    """Names the container, endpoint and credential fields (never their values) in every message."""

    def __init__(self, container: str, endpoint: str, auth_hint: str, secrets: tuple[str, ...]) -> None:
        self.container = container
        self.endpoint = endpoint
        self.auth_hint = auth_hint
        self.secrets = secrets

    def _where(self) -> str:
        return f"azure container '{self.container}' at endpoint {self.endpoint}"

    def wrap(self, action: str, key: str | None, exc: Exception) -> DestinationError:
        target = f"az://{self.container}/{key}" if key is not None else f"az://{self.container}"
        code = error_code(exc)
        status = getattr(exc, "status_code", None)
        if code == "ContainerNotFound":
            return self._msg(
                f"azure container '{self.container}' does not exist at endpoint {self.endpoint} "
                "(create it or fix destination.container)",
                True,
            )
        if code in _DENIED or status in (401, 403) or isinstance(exc, az.ClientAuthenticationError):
            text = f"{self._where()}: {action} {target} access denied ({code or status}): check {self.auth_hint}"
            return self._msg(text, True)
        if isinstance(exc, az.ServiceRequestError | az.ServiceResponseError):
            text = (
                f"{self._where()}: {action} {target}: endpoint unreachable ({type(exc).__name__}); "
                "check destination.endpoint/account_name and the network, then retry"
            )
            return self._msg(text, False)
        transient = isinstance(status, int) and (status >= 500 or status in (408, 429))
        reason = str(getattr(exc, "reason", "") or exc).split("\n", 1)[0]
        text = f"{self._where()}: {action} {target} failed: {code or type(exc).__name__}: {reason}"
        if transient:
            text += " (temporary; retry)"
        return self._msg(text, not transient)

    def _msg(self, text: str, permanent: bool) -> DestinationError:
        return DestinationError(one_line(text, self.secrets), permanent=permanent)


def error_code(exc: Exception) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def is_blob_missing(exc: Exception) -> bool:
    return isinstance(exc, az.ResourceNotFoundError) and error_code(exc) in ("BlobNotFound", "")


def is_condition_lost(exc: Exception) -> bool:
    """A conditional write lost: the blob exists (If-None-Match: *) or changed (If-Match)."""
    return isinstance(exc, az.ResourceExistsError | az.ResourceModifiedError) or getattr(exc, "status_code", None) in (
        409,
        412,
    )
