"""Getting model files: downloads over HTTP (resumable, verified) and package assembly.

Blocking on purpose: callers run `pull` in a worker thread and cancel it with a CancelToken.
A download streams into `<file>.part`, resumes it with an HTTP Range request, and becomes
`<file>` (an atomic rename) only once complete and verified. A `.zip` (a vosk model) is then
unpacked into a directory, also atomically, and deleted.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from ..cancel import CancelToken
from ..errors import BreezeError
from .catalog import ModelEntry, models_dir, package_path, packaged_file

__all__ = [
    "HF_ENDPOINT",
    "DownloadHooks",
    "Progress",
    "download_url",
    "hf_endpoint",
    "pull",
    "remove",
    "sha256_file",
]

HF_ENDPOINT = "https://huggingface.co"
Progress = Callable[[int, int | None], None]


@dataclass(slots=True)
class DownloadHooks:
    """How the app follows (progress) and stops (token) a download it did not start itself,
    such as one a runner makes while loading."""

    progress: Progress | None = None
    token: CancelToken | None = None


def hf_endpoint() -> str:
    return os.environ.get("BREEZE_HF_ENDPOINT", HF_ENDPOINT).rstrip("/")


def download_url(entry: ModelEntry) -> str:
    if entry.source == "huggingface":
        return f"{hf_endpoint()}/{entry.repo}/resolve/{entry.revision}/{entry.file}"
    if entry.source == "url":
        return entry.url
    raise BreezeError("E400", f"model {entry.id} ships with a package: nothing to download")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    _hash_into(path, digest)
    return digest.hexdigest()


def pull(
    entry: ModelEntry,
    progress: Progress | None = None,
    token: CancelToken | None = None,
    *,
    force: bool = False,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
) -> Path:
    """Make the model present and return its path (a file, or the directory of an archive).

    Package files are used in place; assembled ones are written into `models_dir()`; the others
    are downloaded there. An existing model is kept unless `force`. Errors are BreezeError E500
    (E501 when a needed package is missing); cancellation leaves the `.part` for a resume.
    """
    if entry.in_package:
        return packaged_file(entry)
    dest = models_dir() / entry.filename
    target = models_dir() / entry.local_name
    if force:
        _delete(entry)
    elif target.exists():
        return target
    if not dest.exists():  # an archive kept from an unpacking that was cancelled is reused
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        _obtain(entry, dest, progress, token, timeout)
    if entry.archive:
        _unpack(dest, target, token)
        dest.unlink()
    return target


def _obtain(
    entry: ModelEntry,
    dest: Path,
    progress: Progress | None,
    token: CancelToken | None,
    timeout: httpx.Timeout,
) -> None:
    """Assemble or download the file into `dest`, verified."""
    part, sidecar = _part(dest), _sidecar(dest)
    _check(token)
    if entry.assemble:
        _assemble(entry, part)
    else:
        _fetch(download_url(entry), part, entry.size, progress, token, timeout)
    digest = sha256_file(part)
    if entry.sha256 and digest != entry.sha256:
        part.unlink(missing_ok=True)
        raise BreezeError(
            "E500",
            f"checksum mismatch for {entry.id}: expected sha256 {entry.sha256}, got {digest}; "
            "the file was deleted",
            recoverable=False,
        )
    with part.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(part, dest)
    if not entry.sha256:
        sidecar.write_text(f"{digest}  {dest.name}\n", encoding="utf-8")
    if progress is not None:
        size = dest.stat().st_size
        progress(size, size)


def _unpack(archive: Path, target: Path, token: CancelToken | None) -> None:
    """Unpack a zip into `target` through a staging directory, so that `target` is never
    half-written; an archive holding a single folder (as vosk's do) becomes that folder."""
    staging = target.with_name(target.name + ".unpack")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():  # extract() drops absolute and '..' parts
                _check(token)
                bundle.extract(member, staging)
        tops = list(staging.iterdir())
        root = tops[0] if len(tops) == 1 and tops[0].is_dir() else staging
        os.replace(root, target)
    except zipfile.BadZipFile as exc:
        archive.unlink()
        _sidecar(archive).unlink(missing_ok=True)
        raise BreezeError(
            "E500", f"{archive.name} is not a valid zip archive ({exc}); it was deleted", False
        ) from None
    except OSError as exc:
        raise BreezeError("E500", f"cannot unpack {archive.name}: {exc}", False) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove(entry: ModelEntry) -> bool:
    """Delete a downloaded or assembled model (and its .part); False when there was none."""
    if entry.in_package:
        raise BreezeError(
            "E400",
            f"model {entry.id} ships with the package {entry.package} and cannot be removed "
            f"here; `pip uninstall {entry.pip_name}` removes it",
        )
    return _delete(entry)


def _delete(entry: ModelEntry) -> bool:
    dest = models_dir() / entry.filename
    target = models_dir() / entry.local_name
    removed = False
    if target.is_dir():
        shutil.rmtree(target)
        removed = True
    for path in (dest, _part(dest)):
        if path.exists():
            path.unlink()
            removed = True
    _sidecar(dest).unlink(missing_ok=True)
    return removed


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _check(token: CancelToken | None) -> None:
    if token is not None and token.cancelled:
        raise BreezeError("E500", "download cancelled", recoverable=True)


def _hash_into(path: Path, digest: hashlib._Hash) -> None:
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)


def _assemble(entry: ModelEntry, part: Path) -> None:
    package_path(entry)  # E501 with the pip command when the package is missing
    module_name, _, function_name = entry.assemble.partition(":")
    try:
        assemble = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise BreezeError("E501", f"cannot load {entry.assemble} for {entry.id}: {exc}") from None
    try:
        assemble(part, overwrite=True)
    except FileNotFoundError as exc:
        part.unlink(missing_ok=True)
        raise BreezeError(
            "E501", f"{exc}: reinstall with `pip install --force-reinstall {entry.pip_name}`"
        ) from None
    except Exception as exc:
        part.unlink(missing_ok=True)
        raise BreezeError(
            "E500", f"assembling {entry.id} failed: {exc}", recoverable=False
        ) from exc


def _fetch(
    url: str,
    part: Path,
    expected: int,
    progress: Progress | None,
    token: CancelToken | None,
    timeout: httpx.Timeout,
) -> None:
    """Stream `url` into `part`, resuming what is there; raise E500 on any failure."""
    offset = part.stat().st_size if part.exists() else 0
    if expected and offset > expected:
        part.unlink()
        offset = 0
    if expected and offset == expected:
        if progress is not None:
            progress(offset, expected)
        return
    headers = {"Accept-Encoding": "identity", "User-Agent": "breeze-tui"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            resumed = offset > 0 and _range_start(response) == offset
            if offset and response.status_code in (206, 416) and not resumed:
                # The .part does not fit what the server has now: start again from zero.
                part.unlink()
                _fetch(url, part, expected, progress, token, timeout)
                return
            _raise_for_status(response, url)
            done = offset if resumed else 0
            total = _total(response, done)
            if expected and total is not None and total != expected:
                part.unlink(missing_ok=True)
                raise BreezeError(
                    "E500",
                    f"size mismatch for {url}: the catalog says {expected} bytes, the server "
                    f"sends {total}",
                    recoverable=False,
                )
            total = total or expected or None
            if progress is not None:
                progress(done, total)
            with part.open("ab" if resumed else "wb") as handle:
                for chunk in response.iter_bytes():
                    _check(token)
                    handle.write(chunk)
                    done += len(chunk)
                    if expected and done > expected:
                        break  # more than the catalog's size: refused below
                    if progress is not None:
                        progress(done, total)
    except httpx.TimeoutException as exc:
        raise BreezeError("E500", f"timed out downloading {url}: {exc}", True) from None
    except httpx.TransportError as exc:
        what = type(exc).__name__
        raise BreezeError("E500", f"connection failed for {url}: {what}: {exc}", True) from None
    except httpx.HTTPError as exc:
        raise BreezeError("E500", f"download of {url} failed: {exc}", True) from None
    except OSError as exc:
        raise BreezeError("E500", f"cannot write {part}: {exc}", recoverable=False) from None
    if expected and done < expected:
        raise BreezeError(
            "E500", f"incomplete download of {url}: {done} of {expected} bytes", True
        )
    if expected and done > expected:
        part.unlink(missing_ok=True)
        raise BreezeError(
            "E500", f"size mismatch for {url}: expected {expected} bytes, got {done}", False
        )


def _raise_for_status(response: httpx.Response, url: str) -> None:
    code = response.status_code
    if code < 400:
        return
    if code == 404:
        message = f"HTTP 404 not found: {url}"
    elif code in (401, 403):
        message = f"HTTP {code} access denied: {url} (a gated model needs a token or a license)"
    else:
        message = f"HTTP {code} {response.reason_phrase}: {url}"
    raise BreezeError("E500", message, recoverable=code >= 500 or code == 429)


def _range_start(response: httpx.Response) -> int | None:
    """The first byte of a 206 answer ("Content-Range: bytes 100-199/200"), else None."""
    if response.status_code != 206:
        return None
    value = response.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _total(response: httpx.Response, done: int) -> int | None:
    """The size of the whole file from Content-Range or Content-Length, when announced."""
    full = response.headers.get("Content-Range", "").rpartition("/")[2]
    if response.status_code == 206 and full.isdigit():
        return int(full)
    length = response.headers.get("Content-Length", "")
    return done + int(length) if length.isdigit() else None
