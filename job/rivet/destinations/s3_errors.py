"""Turn botocore failures into one-line DestinationErrors that say what to fix and whether to retry."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
)

from rivet.destinations._common import BucketErrors, one_line
from rivet.errors import DestinationError

_DENIED = {
    "AccessDenied",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "AllAccessDisabled",
    "403",
}
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "InternalError", "503"}


class S3Errors(BucketErrors):
    """Knows the bucket, endpoint and credential fields so every message names them (never their values)."""

    store = "s3"

    def wrap(self, action: str, key: str | None, exc: Exception) -> DestinationError:
        target = f"s3://{self.bucket}/{key}" if key is not None else f"s3://{self.bucket}"
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code == "NoSuchBucket" or (code == "404" and key is None):
                text = self._missing()
                return DestinationError(one_line(text, self.secrets))
            if code in _DENIED or status == 403:
                text = f"{self._where()}: {action} {target} access denied ({code}): check {self.auth_hint}"
                return DestinationError(one_line(text, self.secrets))
            transient = code in _TRANSIENT_CODES or status >= 500 or status == 429
            msg = err.get("Message") or code
            text = f"{self._where()}: {action} {target} failed: {code}: {msg}"
            if transient:
                text += " (temporary; retry)"
            return DestinationError(one_line(text, self.secrets), permanent=not transient)
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            text = f"{self._where()}: {action} {target}: no usable credentials found: set {self.auth_hint}"
            return DestinationError(one_line(text, self.secrets))
        if isinstance(exc, ConnectionError):
            text = (
                f"{self._where()}: {action} {target}: endpoint unreachable ({type(exc).__name__}); "
                "check destination.endpoint/region and the network, then retry"
            )
            return DestinationError(one_line(text, self.secrets), permanent=False)
        if isinstance(exc, BotoCoreError):
            text = f"{self._where()}: {action} {target} failed: {exc}"
            return DestinationError(one_line(text, self.secrets))
        text = f"{self._where()}: {action} {target} failed: {type(exc).__name__}: {exc}"
        return DestinationError(one_line(text, self.secrets), permanent=False)

    @staticmethod
    def is_missing(exc: ClientError) -> bool:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        return code in {"NoSuchKey", "404", "NotFound"}
