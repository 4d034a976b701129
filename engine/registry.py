"""The runner registry: which runners exist, what they can do, and which one serves a request."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from .errors import BreezeError
from .runner import Runner, RunnerInfo
from .types import Capability

__all__ = ["Registry", "RunnerEntry"]


@dataclass(slots=True)
class RunnerEntry:
    """A registered runner; its instance is created on first use."""

    name: str
    factory: Callable[[], Runner]
    capabilities: frozenset[Capability]
    priority: int
    enabled: bool = True
    _instance: Runner | None = None

    @property
    def runner(self) -> Runner:
        if self._instance is None:
            self._instance = self.factory()
        return self._instance

    @property
    def instantiated(self) -> bool:
        return self._instance is not None


class Registry:
    def __init__(self, runners: Iterable[type[Runner] | Runner] = ()) -> None:
        self._entries: dict[str, RunnerEntry] = {}
        for runner in runners:
            self.register(runner)

    def register(
        self,
        runner: type[Runner] | Runner,
        *,
        priority: int | None = None,
        enabled: bool = True,
    ) -> RunnerEntry:
        if isinstance(runner, Runner):
            instance: Runner | None = runner
            cls: type[Runner] = type(runner)
            factory: Callable[[], Runner] = lambda: runner  # noqa: E731
        else:
            instance, cls, factory = None, runner, runner
        if not cls.name:
            raise ValueError(f"{cls.__name__} has no name")
        entry = RunnerEntry(
            name=cls.name,
            factory=factory,
            capabilities=frozenset(cls.capabilities),
            priority=cls.priority if priority is None else priority,
            enabled=enabled,
            _instance=instance,
        )
        self._entries[entry.name] = entry
        return entry

    def entries(self) -> list[RunnerEntry]:
        return sorted(self._entries.values(), key=lambda e: (-e.priority, e.name))

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def get(self, name: str) -> Runner:
        return self.entry(name).runner

    def entry(self, name: str) -> RunnerEntry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise BreezeError("E404", f"no runner named {name!r} (known: {known})") from None

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.entry(name).enabled = enabled

    def candidates(
        self,
        capability: Capability,
        explicit: str | None = None,
        preferred: Mapping[Capability, str] | None = None,
    ) -> list[RunnerEntry]:
        """Runners to try in order: the explicit name alone (no fallback: the user asked for
        it), else the user's preferred runner for the capability, then the rest by priority."""
        if explicit:
            entry = self.entry(explicit)
            if capability not in entry.capabilities:
                raise BreezeError(
                    "E405",
                    f"runner {explicit!r} does not support {capability.value} "
                    f"(it supports {', '.join(sorted(c.value for c in entry.capabilities))})",
                )
            return [entry]
        ordered = [e for e in self.entries() if e.enabled and capability in e.capabilities]
        favourite = (preferred or {}).get(capability)
        if favourite:
            ordered.sort(key=lambda e: e.name != favourite)
        if not ordered:
            raise BreezeError("E405", f"no enabled runner supports {capability.value}")
        return ordered

    def infos(self) -> list[RunnerInfo]:
        return [self._info(e) for e in self.entries()]

    @staticmethod
    def _info(entry: RunnerEntry) -> RunnerInfo:
        info = entry.runner.info()
        if not entry.enabled:
            return dataclasses.replace(info, available=False, reason="disabled")
        return info
