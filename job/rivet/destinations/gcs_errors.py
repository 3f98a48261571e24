"""Turn google-cloud-storage / google-auth / requests failures into one-line DestinationErrors."""

from __future__ import annotations

from google.api_core import exceptions as api
from google.auth import exceptions as auth
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from requests import exceptions as http

from rivet.destinations._common import BucketErrors, one_line
from rivet.errors import DestinationError

GCS_ERRORS: tuple[type[Exception], ...] = (
    api.GoogleAPIError,  # includes RetryError, raised when the library's own retries run out
    auth.GoogleAuthError,
    http.RequestException,
    InvalidResponse,
    DataCorruption,
)


class GcsErrors(BucketErrors):
    """Names the bucket, endpoint and credential fields (never their values) in every message."""

    store = "gcs"

    def wrap(self, action: str, key: str | None, exc: Exception, *, bucket_level: bool = False) -> DestinationError:
        target = f"gs://{self.bucket}/{key}" if key is not None else f"gs://{self.bucket}"
        if isinstance(exc, api.RetryError) and isinstance(exc.cause, Exception):
            exc = exc.cause  # report what kept failing, not the retry wrapper
        status = _status(exc)
        if status == 404 and bucket_level:
            return self._msg(self._missing(), True)
        if status in (401, 403) or isinstance(exc, auth.RefreshError | auth.DefaultCredentialsError):
            return self._msg(f"{self._where()}: {action} {target} access denied: check {self.auth_hint}", True)
        if isinstance(exc, http.ConnectionError | http.Timeout | auth.TransportError):
            return self._msg(
                f"{self._where()}: {action} {target}: endpoint unreachable ({type(exc).__name__}); "
                "check destination.endpoint and the network, then retry",
                False,
            )
        transient = status is not None and (status >= 500 or status in (408, 429))
        text = f"{self._where()}: {action} {target} failed: {type(exc).__name__}: {exc}"
        if transient:
            text += " (temporary; retry)"
        return self._msg(text, not transient)

    def _msg(self, text: str, permanent: bool) -> DestinationError:
        return DestinationError(one_line(text, self.secrets), permanent=permanent)


def _status(exc: Exception) -> int | None:
    if isinstance(exc, api.GoogleAPICallError):
        return int(exc.code) if exc.code is not None else None
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return int(code) if isinstance(code, int) else None


def is_not_found(exc: Exception) -> bool:
    return _status(exc) == 404


def is_precondition_failed(exc: Exception) -> bool:
    """A conditional write (ifGenerationMatch) lost: another writer created or changed the object."""
    if isinstance(exc, api.RetryError) and isinstance(exc.cause, Exception):
        exc = exc.cause
    return _status(exc) == 412
