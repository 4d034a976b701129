"""The user's config file (TOML): one file, each part of Breeze owning its own tables.

Writes keep every table they do not touch, and the file is private (0600): it may hold API
keys of remote engines.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from .errors import BreezeError

__all__ = ["config_path", "read_config", "update_config", "write_config"]


def config_path() -> Path:
    base = os.environ.get("BREEZE_CONFIG_DIR") or platformdirs.user_config_dir("breeze")
    return Path(base) / "config.toml"


def read_config() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BreezeError("E400", f"{path} is not valid TOML: {exc}") from None


def update_config(key: str, table: Mapping[str, Any]) -> Path:
    """Replace one top-level table, keeping the rest of the file."""
    config = read_config()
    config[key] = dict(table)
    return write_config(config)


def write_config(config: Mapping[str, Any]) -> Path:
    path = config_path()
    tmp = path.with_suffix(".toml.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dump_toml(config))
        os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a leftover temporary file
        os.replace(tmp, path)
    except OSError as exc:  # the file as it was is left in place
        raise BreezeError("E501", f"cannot write the settings to {path}: {exc.strerror}") from exc
    return path


def dump_toml(table: Mapping[str, Any], prefix: str = "") -> str:
    """TOML for nested tables of strings, numbers, booleans and lists of them."""
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, Mapping)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
    lines = [f"{_key(k)} = {_value(v)}" for k, v in scalars if v is not None]
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, sub in tables:
        name = f"{prefix}.{_key(key)}" if prefix else _key(key)
        body = dump_toml(sub, name)
        out += f"\n[{name}]\n{body}" if any(not isinstance(v, Mapping) for v in sub.values()) \
            else body
    return out


def _key(key: str) -> str:
    bare = key.replace("_", "").replace("-", "").isalnum()
    return key if bare else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise BreezeError("E400", f"cannot write {type(value).__name__} to the config file")
