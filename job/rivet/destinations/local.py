"""Local file system destination: every publish is temp file + fsync + rename + directory fsync (M7)."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

from rivet.contract.objects import ObjectInfo
from rivet.destinations._common import Md5Tracker, check_key, part_conflict
from rivet.destinations.base import WriterDigests
from rivet.errors import ContractError, DestinationError

TMP_MARK = ".rivet-tmp-"
_TRANSIENT = {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.EIO}
# link(2) refused by the file system itself (no hard links: some FUSE, SMB or object-store mounts)
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def _err(action: str, path: Path | str, exc: OSError) -> DestinationError:
    reason = exc.strerror or type(exc).__name__
    return DestinationError(
        f"local {action} {path} failed: {reason} (check the path and its permissions)",
        permanent=exc.errno not in _TRANSIENT,
    )


def _fsync_dir(path: Path) -> None:
    """A rename is durable only once its directory entry is flushed."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_for(target: Path) -> Path:
    return target.parent / f"{TMP_MARK}{uuid.uuid4().hex}-{target.name}"


def _publish(tmp: Path, target: Path) -> None:
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def version_of(st: os.stat_result) -> str:
    """The file's identity for a conditional replace: a rename or rewrite changes the inode or mtime."""
    return f"{st.st_ino}-{st.st_size}-{st.st_mtime_ns}"


def _publish_new(tmp: Path, target: Path) -> None:
    """Create-only publish: link(2) fails with EEXIST if anything is at the target, so an object another
    writer put there is never replaced. File systems without hard links fall back to check-then-rename."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise part_conflict(f"local commit {target}", None) from None
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        if os.path.lexists(target):  # best effort where link(2) is not available: a small race remains
            raise part_conflict(f"local commit {target}", None) from None
        os.replace(tmp, target)
    else:
        tmp.unlink()
    _fsync_dir(target.parent)


def _publish_over(tmp: Path, target: Path, replace: ObjectInfo) -> None:
    """Replace only the file the caller decided to replace (same inode, size and mtime)."""
    try:
        current = version_of(target.stat())
    except FileNotFoundError:
        current = None
    if replace.version is not None and current != replace.version:
        raise part_conflict(f"local commit {target}", replace)
    _publish(tmp, target)


class LocalPartUpload:
    """Streams into a hidden temp file next to the target, so a crash never leaves a partial part at the key.

    `fenced` uploads (parts) publish conditionally: create-only, or over the `replace` version only."""

    def __init__(self, target: Path, replace: ObjectInfo | None = None, fenced: bool = True) -> None:
        self._target = target
        self._tmp = _temp_for(target)
        self._md5 = Md5Tracker()
        self._done = False
        self._replace = replace
        self._fenced = fenced
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._fh: BinaryIO = open(self._tmp, "xb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise _err("create", self._tmp, exc) from exc

    def hashed_by(self, digests: WriterDigests) -> None:
        """The writer hashes every byte with MD5 (the DigestSink): no second MD5 pass here. Before the first write."""
        self._md5.hashed_by(digests, f"local upload {self._target}")

    def write(self, data: bytes) -> int:
        if self._done:
            raise DestinationError(f"local write {self._target}: upload already committed or aborted")
        try:
            n = self._fh.write(data)
        except OSError as exc:
            self.abort()
            raise _err("write", self._tmp, exc) from exc
        self._md5.update(data)
        return n

    def commit(self, content_md5: bytes | None = None) -> None:
        if self._done:
            raise DestinationError(f"local commit {self._target}: upload already committed or aborted")
        try:
            self._md5.verify(content_md5, f"local commit {self._target}")
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            if not self._fenced:
                _publish(self._tmp, self._target)
            elif self._replace is None:
                _publish_new(self._tmp, self._target)
            else:
                _publish_over(self._tmp, self._target, self._replace)
        except OSError as exc:
            self.abort()
            raise _err("commit", self._target, exc) from exc
        except (DestinationError, ContractError):
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        self._done = True
        with contextlib.suppress(OSError):
            self._fh.close()
        try:
            self._tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise _err("remove temp file", self._tmp, exc) from exc


class LocalDestination:
    kind = "local"

    def __init__(self, root: str) -> None:
        self.root = Path(root).expanduser().absolute()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def uri(self) -> str:
        return self.root.as_uri().rstrip("/") + "/"

    def check(self) -> None:
        """Usable if the directory exists and is readable (validate only reads), or could be created under
        its nearest existing ancestor. Nothing is created here."""
        if self.root.is_dir():
            if not os.access(self.root, os.R_OK | os.X_OK):
                raise DestinationError(f"local path {self.root} is not readable (fix its permissions)")
            return
        probe = self.root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise DestinationError(f"local path {self.root}: {probe} is not a directory (fix destination.path)")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise DestinationError(f"local path {self.root}: {probe} is not writable (fix its permissions)")

    def open_part(self, key: str, replace: ObjectInfo | None = None) -> LocalPartUpload:
        return LocalPartUpload(self._path(key), replace)

    def put_bytes(self, key: str, data: bytes) -> None:
        upload = LocalPartUpload(self._path(key), fenced=False)
        upload.write(data)
        upload.commit()

    def get_bytes(self, key: str, limit: int | None = None) -> bytes | None:
        path = self._path(key)
        try:
            if limit is not None:
                with open(path, "rb") as fh:
                    return fh.read(limit)
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _err("read", path, exc) from exc

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise _err("stat", path, exc) from exc
        return ObjectInfo(key=key, size=st.st_size, version=version_of(st)) if path.is_file() else None

    def list(self) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []

        def fail(exc: OSError) -> None:
            raise _err("list", self.root, exc)

        if not self.root.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(self.root, onerror=fail):
            base = Path(dirpath)
            for name in files:
                if name.startswith(TMP_MARK):
                    continue
                path = base / name
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue  # removed while listing
                except OSError as exc:
                    raise _err("stat", path, exc) from exc
                out.append(
                    ObjectInfo(key=path.relative_to(self.root).as_posix(), size=st.st_size, version=version_of(st))
                )
        out.sort(key=lambda o: o.key)
        return out

    def copy(self, src_key: str, dst_key: str) -> None:
        src, dst = self._path(src_key), self._path(dst_key)
        tmp = _temp_for(dst)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            with open(src, "rb") as fin, open(tmp, "xb") as fout:
                shutil.copyfileobj(fin, fout, 1024 * 1024)
                fout.flush()
                os.fsync(fout.fileno())
            _publish(tmp, dst)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise _err("copy", f"{src} -> {dst}", exc) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _err("delete", path, exc) from exc
