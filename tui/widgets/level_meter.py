"""A microphone level as a bar: -60 dBFS (silence) to 0 dBFS (full scale)."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static

FLOOR_DBFS = -60.0
SILENT_DBFS = -90.0  # digital silence, or a muted microphone


def level_bar(level_dbfs: float | None, width: int = 10) -> str:
    """`▮▮▮▯▯▯▯▯▯▯` for a level; all hollow for silence or no level."""
    if level_dbfs is None:
        filled = 0
    else:
        share = (min(0.0, max(FLOOR_DBFS, level_dbfs)) - FLOOR_DBFS) / -FLOOR_DBFS
        filled = round(share * width)
    return "▮" * filled + "▯" * (width - filled)


class LevelMeter(Static):
    level: reactive[float | None] = reactive(None)
    problem: reactive[str] = reactive("")  # why there is no level (the device failed)

    def show(self, level: float | None, problem: str = "") -> None:
        self.level, self.problem = level, problem

    def render(self) -> str:
        if self.problem:
            return f"{level_bar(None, 20)}  {self.problem}"
        if self.level is None:
            return f"{level_bar(None, 20)}  no signal"
        if self.level <= SILENT_DBFS:
            return f"{level_bar(None, 20)}  silent"
        return f"{level_bar(self.level, 20)}  {self.level:.0f} dBFS"
