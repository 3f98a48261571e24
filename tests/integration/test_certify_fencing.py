"""manifest.json and `_SUCCESS` are fenced like parts (issue #21 item 8), on every real store: a certifier
never overwrites what another writer put there after it looked, and at plan time an S3-compatible store
that ignores conditional writes is refused (or, by explicit setting, only warned about)."""

from __future__ import annotations

import pytest

from rivet.contract.manifest import MANIFEST_KEY, SUCCESS_KEY
from rivet.contract.objects import ObjectInfo
from rivet.destinations.base import Destination, PartUpload
from rivet.engine.certify import probe_conditional_writes, write_once
from rivet.errors import ConcurrentCertify, ContractError
from tests.fixtures.objectstores import StoreHandle

PREFIX = "certify-fenced/orders/"


def test_a_manifest_created_after_the_certifier_looked_is_not_overwritten(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    previous = dest.head(MANIFEST_KEY)  # what certify saw: nothing
    assert previous is None
    dest.put_bytes(MANIFEST_KEY, b'{"run_id": "other"}')  # another run's finalize got there first
    with pytest.raises(ConcurrentCertify) as info:
        write_once(dest, MANIFEST_KEY, b'{"run_id": "mine"}', previous)
    assert info.value.reason == "ConcurrentCertify" and not info.value.permanent and info.value.exit_code == 3
    assert dest.get_bytes(MANIFEST_KEY) == b'{"run_id": "other"}'


def test_a_manifest_replaced_after_the_certifier_looked_is_not_overwritten(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    dest.put_bytes(MANIFEST_KEY, b'{"run_id": "old"}')
    previous = dest.head(MANIFEST_KEY)  # certify may replace exactly this version
    dest.put_bytes(MANIFEST_KEY, b'{"run_id": "newer"}')
    if previous is not None and previous.version is None:
        pytest.skip(f"{store.kind} reports no version to replace conditionally")
    with pytest.raises(ConcurrentCertify):
        write_once(dest, MANIFEST_KEY, b'{"run_id": "mine"}', previous)
    assert dest.get_bytes(MANIFEST_KEY) == b'{"run_id": "newer"}'
    # the version it did see is replaced normally
    current = dest.head(MANIFEST_KEY)
    write_once(dest, MANIFEST_KEY, b'{"run_id": "mine"}', current)
    assert dest.get_bytes(MANIFEST_KEY) == b'{"run_id": "mine"}'


def test_success_is_create_only(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    write_once(dest, SUCCESS_KEY, b"xxh3:00000000000000aa\n", None)
    with pytest.raises(ConcurrentCertify):
        write_once(dest, SUCCESS_KEY, b"xxh3:00000000000000bb\n", None)
    assert dest.get_bytes(SUCCESS_KEY) == b"xxh3:00000000000000aa\n"


def test_every_real_store_honours_the_plan_time_probe_and_the_probe_leaves_nothing(store: StoreHandle) -> None:
    dest = store.open(PREFIX)
    probe_conditional_writes(dest, "orders-r1", "require")
    assert dest.list() == []


class IgnoresConditions:
    """A store that lets a create-only write replace an existing object, as some S3-compatible servers do.
    A fake around a real destination: no server here can be made to ignore If-None-Match on demand."""

    def __init__(self, real: Destination) -> None:
        self.real = real

    def open_part(self, key: str, replace: ObjectInfo | None = None) -> PartUpload:
        self.real.delete(key)  # what ignoring the condition amounts to: the write wins whatever is there
        return self.real.open_part(key, None)

    def delete(self, key: str) -> None:
        self.real.delete(key)

    def uri(self) -> str:
        return self.real.uri()


def test_a_store_that_ignores_conditional_writes_is_refused_or_by_setting_warned_about(store: StoreHandle) -> None:
    if store.kind != "s3":
        pytest.skip("the probe runs for S3-compatible stores; GCS, Azure and local files fence by their API")
    lax = IgnoresConditions(store.open(PREFIX))
    with pytest.raises(ContractError) as info:
        probe_conditional_writes(lax, "orders-r1", "require")  # type: ignore[arg-type]
    assert info.value.reason == "ConditionalWritesIgnored" and info.value.permanent
    assert "conditional_writes: warn" in str(info.value)
    probe_conditional_writes(lax, "orders-r2", "warn")  # type: ignore[arg-type]
    assert store.open(PREFIX).list() == []
