"""A small async Kubernetes REST client on aiohttp, authenticated with kopf's own login.

Why not the official `kubernetes` client: it is synchronous (it would block kopf's event loop) and
is the largest memory cost in a kopf operator. aiohttp is already kopf's transport, and we only
need a handful of verbs on Jobs, Pods, ConfigMaps, Events and our own status.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import kopf


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Kube:
    """`login` is called for fresh credentials at start and again after a 401 (rotated token)."""

    def __init__(self, login: Callable[[], kopf.ConnectionInfo | None]) -> None:
        self._login = login
        info = login()
        if info is None:
            raise kopf.LoginError("no Kubernetes credentials")
        self._info = info
        self._session: aiohttp.ClientSession | None = None

    def _ssl(self) -> ssl.SSLContext | bool:
        info = self._info
        if info.insecure:
            return False
        ctx = ssl.create_default_context()
        if info.ca_path:
            ctx.load_verify_locations(cafile=str(info.ca_path))
        elif info.ca_data:
            data = info.ca_data.decode() if isinstance(info.ca_data, bytes) else info.ca_data
            ctx.load_verify_locations(cadata=_pem(data))
        cert, key = info.certificate_path, info.private_key_path
        if info.certificate_data and info.private_key_data:
            cert, key = _tmp_pem(info.certificate_data), _tmp_pem(info.private_key_data)
        if cert and key:
            ctx.load_cert_chain(str(cert), str(key))
        return ctx

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": "application/json"}
            if self._info.token:
                headers["Authorization"] = f"Bearer {self._info.token}"
            self._session = aiohttp.ClientSession(
                base_url=self._info.server.rstrip("/") + "/",
                headers=headers,
                connector=aiohttp.TCPConnector(ssl=self._ssl(), limit=20),
                timeout=aiohttp.ClientTimeout(total=60),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        try:
            return await self._request(method, path, body, params, content_type)
        except ApiError as exc:
            if exc.status != 401:
                raise
            info = self._login()  # the token rotated: log in again once, then retry
            if info is None:
                raise
            self._info = info
            await self.close()
            return await self._request(method, path, body, params, content_type)

    async def _request(
        self, method: str, path: str, body: Any, params: dict[str, str] | None, content_type: str
    ) -> Any:
        session = await self.session()
        url = path.lstrip("/") + (("?" + urlencode(params)) if params else "")
        data = json.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else {}
        async with session.request(method, url, data=data, headers=headers) as resp:
            text = await resp.text()
            if resp.status >= 400:
                try:
                    message = json.loads(text).get("message", text)
                except ValueError:
                    message = text
                raise ApiError(resp.status, str(message)[:500])
            return json.loads(text) if text else None

    # -- verbs ----------------------------------------------------------------------------------

    async def get(self, path: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.request("GET", path)
            return result
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, path: str, selector: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params = {"labelSelector": selector, "limit": "500"}
        while True:
            page = await self.request("GET", path, params=params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items
            params = {**params, "continue": token}

    async def create(self, path: str, body: dict[str, Any]) -> bool:
        """Create; an existing object (409) counts as done, so a repeated handler is harmless."""
        try:
            await self.request("POST", path, body)
            return True
        except ApiError as exc:
            if exc.status == 409:
                return False
            raise

    async def delete(self, path: str) -> None:
        try:
            await self.request("DELETE", path, {"propagationPolicy": "Background"})
        except ApiError as exc:
            if exc.status != 404:
                raise

    async def merge_patch(self, path: str, body: dict[str, Any]) -> Any:
        return await self.request("PATCH", path, body, content_type="application/merge-patch+json")


def _pem(data: str) -> str:
    return data if "BEGIN" in data else base64.b64decode(data).decode()


def _tmp_pem(data: str | bytes) -> str:
    text = data.decode() if isinstance(data, bytes) else data
    f = tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False)  # noqa: SIM115 - kept for the process lifetime
    f.write(_pem(text))
    f.close()
    return f.name


def ns_path(namespace: str, plural: str, name: str | None = None, group: str | None = None, version: str = "v1") -> str:
    root = f"apis/{group}/{version}" if group else f"api/{version}"
    path = f"{root}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path
