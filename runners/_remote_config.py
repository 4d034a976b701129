"""Remote engine profiles: where an OpenAI-compatible server is and how to reach it.

Profiles live in the user's config file (`engine.config_file`: config.toml in
$BREEZE_CONFIG_DIR, else the user config directory; written 0600), one table per profile:

    [remote]
    default_profile = "lab"

    [remote.lab]
    base_url = "http://10.0.0.5:8000/v1"
    model = "qwen2.5-7b-instruct"
    api_key_env = "LAB_API_KEY"     # or api_key = "..." (the file is written 0600)
    timeout_s = 60
    max_retries = 3

A request's params override its profile; the environment fills what both leave open
(OPENAI_BASE_URL, OPENAI_API_KEY, BREEZE_REMOTE_PROFILE). API keys never appear in a repr,
a log line or printed output.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from breeze.engine import BreezeError, RetryPolicy
from breeze.engine.config_file import config_path, read_config, update_config

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "Endpoint",
    "RemoteProfile",
    "default_profile_name",
    "load_profiles",
    "remote_params",
    "remove_profile",
    "resolve_endpoint",
    "redact_url",
    "retry_policy",
    "save_profile",
]

DEFAULT_TIMEOUT_S = 60.0
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RESERVED = {"default_profile"}


@dataclass(frozen=True, slots=True)
class RemoteProfile:
    """One `[remote.<name>]` table of the config file."""

    name: str
    base_url: str
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    timeout_s: float | None = None
    max_retries: int | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name in _RESERVED:
            raise BreezeError("E400", f"bad profile name {self.name!r} (letters, digits, - and _)")
        _check_url(self.base_url)
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise BreezeError("E400", f"profile {self.name!r}: timeout_s must be > 0")
        if self.max_retries is not None and self.max_retries < 0:
            raise BreezeError("E400", f"profile {self.name!r}: max_retries must be >= 0")

    def to_table(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "name" and v is not None}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Everything one request needs to reach its server, resolved."""

    base_url: str
    model: str | None
    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S
    profile: str | None = None

    @property
    def shown_url(self) -> str:
        """The base URL as errors and logs show it: without credentials."""
        return redact_url(self.base_url)


def _remote_table(config: Mapping[str, Any]) -> dict[str, Any]:
    table = config.get("remote", {})
    return dict(table) if isinstance(table, Mapping) else {}


def load_profiles() -> dict[str, RemoteProfile]:
    profiles: dict[str, RemoteProfile] = {}
    for name, table in _remote_table(read_config()).items():
        if isinstance(table, Mapping):
            try:
                profiles[name] = RemoteProfile(name=name, **table)
            except TypeError as exc:
                raise BreezeError("E400", f"profile {name!r} in {config_path()}: {exc}") from None
    return profiles


def default_profile_name() -> str | None:
    """$BREEZE_REMOTE_PROFILE, else the config's `default_profile`."""
    env = os.environ.get("BREEZE_REMOTE_PROFILE")
    if env:
        return env
    value = _remote_table(read_config()).get("default_profile")
    return value if isinstance(value, str) else None


def _profile(name: str | None) -> RemoteProfile | None:
    name = name or default_profile_name()
    if name is None:
        return None
    profiles = load_profiles()
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise BreezeError("E404", f"no remote profile named {name!r} (known: {known})")
    return profiles[name]


def save_profile(profile: RemoteProfile, make_default: bool = False) -> Path:
    """Add or replace a profile; the config file keeps its other tables and stays 0600."""
    remote = _remote_table(read_config())
    remote[profile.name] = profile.to_table()
    if make_default:
        remote["default_profile"] = profile.name
    return update_config({"remote": remote})


def remove_profile(name: str) -> None:
    remote = _remote_table(read_config())
    if not isinstance(remote.pop(name, None), Mapping):
        raise BreezeError("E404", f"no remote profile named {name!r}")
    if remote.get("default_profile") == name:
        del remote["default_profile"]
    update_config({"remote": remote})


def redact_url(url: str) -> str:
    """`url` with the password of its `user:password@` part (or a lone user, often a key)
    replaced by ***."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    user, sep, _ = userinfo.partition(":")
    shown = f"{user}:***" if sep else "***"
    return urlunsplit(parts._replace(netloc=f"{shown}@{host}"))


def _check_url(url: str) -> None:
    if not re.match(r"^https?://[^/\s]+", url or ""):
        raise BreezeError("E400", "base URL must start with http:// or https://, "
                                  f"got {redact_url(url)!r}")


def _api_key(params: Mapping[str, Any], profile: RemoteProfile | None) -> str | None:
    """The key in the env var the request or the profile names, else the profile's stored
    key; $OPENAI_API_KEY only without a profile (a profile's server never gets another's key)."""
    env_name = params.get("api_key_env") or (profile.api_key_env if profile else None)
    if env_name:
        if not os.environ.get(env_name):
            raise BreezeError("E400", f"the environment variable {env_name} (API key) is not set")
        return os.environ[env_name]
    if profile is not None:
        return profile.api_key
    return os.environ.get("OPENAI_API_KEY") or None


def resolve_endpoint(
    params: Mapping[str, Any], profile: RemoteProfile | None = None
) -> Endpoint:
    """Params > the profile (given, named by params["profile"], or the default one) > env.

    E501 when no server is configured at all (so the engine can fall back to another runner).
    """
    if profile is None or params.get("profile"):
        profile = _profile(params.get("profile"))
    base_url = params.get("base_url") or (profile.base_url if profile else None)
    base_url = base_url or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise BreezeError(
            "E501",
            "no remote engine configured: pass --base-url, set OPENAI_BASE_URL, or add a "
            "profile with `breeze remote add NAME --base-url URL`",
        )
    _check_url(base_url)
    timeout = params.get("timeout_s") or (profile.timeout_s if profile else None)
    return Endpoint(
        base_url=base_url.rstrip("/"),
        model=params.get("model") or (profile.model if profile else None),
        api_key=_api_key(params, profile),
        timeout_s=float(timeout or DEFAULT_TIMEOUT_S),
        profile=profile.name if profile else None,
    )


def retry_policy(profile: str | None = None, base: RetryPolicy | None = None) -> RetryPolicy:
    """The engine's retry policy with the profile's `max_retries` (for EngineSettings.retry).
    A missing or broken profile leaves `base` as it is: the request reports that error."""
    base = base or RetryPolicy()
    try:
        chosen = _profile(profile)
    except BreezeError:
        return base
    if chosen is None or chosen.max_retries is None:
        return base
    return RetryPolicy(chosen.max_retries, base.base_delay_s, base.factor, base.max_delay_s)


def remote_params(
    base_url: str | None = None, profile: str | None = None, api_key_env: str | None = None
) -> dict[str, str]:
    """Request params for the openai runner from command-line flags (only those given)."""
    given = {"base_url": base_url, "profile": profile, "api_key_env": api_key_env}
    return {k: v for k, v in given.items() if v}
