"""The error codes of Breeze: one table, one meaning per code.

`docs/errors.md` is generated from `ERROR_CODES` (a test keeps them equal).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ERROR_CODES", "BreezeError", "RunnerError", "describe"]

# code -> (title, recoverable by default)
ERROR_CODES: dict[str, tuple[str, bool]] = {
    "E101": ("Processing error: the runner failed while working on the request", False),
    "E102": ("Streaming failed: the stream broke before it ended", True),
    "E103": ("Timeout: the backend did not answer in time", True),
    "E400": ("Invalid input: missing or wrong-typed inputs or parameters", False),
    "E404": ("Runner or model not found", False),
    "E405": ("Capability not supported by the chosen runner", False),
    "E406": ("Streaming not supported", False),
    "E429": ("Rate limited by a remote engine", True),
    "E500": ("Model download failed", True),
    "E501": ("Resource unavailable: a model file or device is missing", False),
    "E502": ("Model load failed: the file is corrupt or not a model", False),
    "E503": ("Hardware not supported", False),
    "E504": ("Insufficient resources (memory, context window)", False),
    "G100": ("Blocked by the guardian", False),
}


@dataclass(frozen=True, slots=True)
class RunnerError:
    """What went wrong, as the consumer sees it in an error result."""

    code: str
    message: str
    recoverable: bool = False
    retry_after_s: float | None = None  # when the backend said how long to wait (Retry-After)

    def __post_init__(self) -> None:
        if self.code not in ERROR_CODES:
            raise ValueError(f"unknown error code {self.code!r}")

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @classmethod
    def of(cls, code: str, message: str, recoverable: bool | None = None) -> RunnerError:
        """An error whose recoverability defaults to the code's own."""
        if recoverable is None:
            recoverable = ERROR_CODES.get(code, ("", False))[1]
        return cls(code, message, recoverable)

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"code": self.code, "message": self.message,
                                   "recoverable": self.recoverable}
        if self.retry_after_s is not None:
            data["retry_after_s"] = self.retry_after_s
        return data


class BreezeError(Exception):
    """Raised inside the engine and runners; turned into an error result at the boundary."""

    def __init__(self, code: str, message: str, recoverable: bool | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.error = RunnerError.of(code, message, recoverable)


def describe(code: str) -> str:
    return ERROR_CODES[code][0]


def errors_markdown() -> str:
    """The table of docs/errors.md."""
    lines = [
        "# Error codes",
        "",
        "Every failure reaches the consumer as an error result carrying one of these codes.",
        "`breeze` prints the code on stderr and exits non-zero. Recoverable errors may be",
        "retried with exponential backoff while nothing has been shown to the consumer yet.",
        "",
        "| code | meaning | recoverable |",
        "| --- | --- | --- |",
    ]
    for code, (title, recoverable) in ERROR_CODES.items():
        lines.append(f"| {code} | {title} | {'yes' if recoverable else 'no'} |")
    return "\n".join(lines) + "\n"
