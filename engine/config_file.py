"""The user's config file (TOML): one file, each part of Breeze owning its own tables.

Writes go through a style-keeping TOML document, so the user's comments, ordering and
formatting survive; only the values that changed are rewritten. The file is private (0600):
it may hold API keys of remote engines. A file that cannot be read at all (not TOML, not
UTF-8, a directory) is moved aside, once, and Breeze goes on with its defaults.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs
import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Table
from tomlkit.toml_document import TOMLDocument

from .errors import BreezeError

__all__ = ["config_path", "read_config", "take_config_notices", "update_config"]

log = logging.getLogger("breeze.config")
_notices: list[str] = []


def config_path() -> Path:
    base = os.environ.get("BREEZE_CONFIG_DIR") or platformdirs.user_config_dir("breeze")
    return Path(base) / "config.toml"


def read_config() -> dict[str, Any]:
    """The file's tables as plain Python values ({} when there is no file)."""
    return _read_document().unwrap()


def take_config_notices() -> list[str]:
    """What happened to an unreadable config file since the last call (each told once)."""
    taken = _notices[:]
    _notices.clear()
    return taken


def update_config(tables: Mapping[str, Mapping[str, Any]]) -> Path:
    """Make each named top-level table equal to its new value, in one write; the rest of the
    file, and the comments and layout of what did not change, are kept."""
    document = _read_document()
    _merge(document, tables, keep_others=True)
    return _write(document)


def _read_document() -> TOMLDocument:
    path = config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return tomlkit.document()
    except IsADirectoryError:
        return _move_aside(path, "it is a directory, not a file")
    except UnicodeDecodeError as exc:
        return _move_aside(path, f"it is not UTF-8 text ({exc.reason} at byte {exc.start})")
    except OSError as exc:
        return _notice(f"cannot read the settings in {path}: {exc.strerror}; Breeze starts "
                       "with its default settings.")
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        return _move_aside(path, f"it is not valid TOML ({exc})")


def _move_aside(path: Path, problem: str) -> TOMLDocument:
    aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, aside)
    except OSError as exc:
        raise BreezeError("E400", f"the settings file {path} cannot be used: {problem}; "
                                  f"moving it aside failed: {exc.strerror}") from exc
    return _notice(f"the settings file {path} could not be used: {problem}. It was moved to "
                   f"{aside}; Breeze starts with its default settings.")


def _notice(text: str) -> TOMLDocument:
    log.warning(text)
    _notices.append(text)
    return tomlkit.document()


def _merge(container: TOMLDocument | Table, new: Mapping[str, Any],
           keep_others: bool = False) -> None:
    new = _plain(new)
    if not keep_others:
        for key in [k for k in container if k not in new]:
            del container[key]
    for key, value in new.items():
        current = container.get(key)
        if isinstance(current, Table) and isinstance(value, Mapping):
            _merge(current, value)
        elif key not in container or _unwrap(current) != value:
            container[key] = value


def _unwrap(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value


def _plain(value: Any) -> Any:
    """Mappings and tuples as TOML tables and arrays; None values are left out."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _write(document: TOMLDocument) -> Path:
    path = config_path()
    tmp = path.with_suffix(".toml.tmp")
    try:
        text = tomlkit.dumps(document)
    except (TOMLKitError, TypeError, ValueError) as exc:
        raise BreezeError("E400", f"cannot write the settings: {exc}") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a leftover temporary file
        os.replace(tmp, path)
    except OSError as exc:  # the file as it was is left in place
        raise BreezeError("E501", f"cannot write the settings to {path}: {exc.strerror}") from exc
    return path
