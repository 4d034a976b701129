"""What a spoken conversation (engine.talk) tells its front ends, turn by turn."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .errors import RunnerError

__all__ = [
    "EchoIgnored",
    "Heard",
    "Interrupted",
    "Problem",
    "Replying",
    "Speaking",
    "StateChanged",
    "TalkEnded",
    "TalkEvent",
    "TurnDone",
    "TurnMetrics",
    "event_to_dict",
]

# "starting" until the microphone's first audio arrives: only then is Breeze listening
STARTING = "starting"
LISTENING, HEARING, THINKING, SPEAKING = "listening", "hearing", "thinking", "speaking"


@dataclass(frozen=True, slots=True)
class StateChanged:
    """listening (nobody speaks), hearing (the user speaks), thinking (transcribing and
    writing the reply) or speaking (Breeze's voice is playing)."""

    state: str


@dataclass(frozen=True, slots=True)
class Heard:
    """What the user said: the utterance so far (final=False) or the turn's message (typed:
    it was written, with Talk.ask)."""

    turn: int
    text: str
    final: bool
    typed: bool = False


@dataclass(frozen=True, slots=True)
class EchoIgnored:
    """A transcript that was Breeze's own voice heard back, dropped."""

    text: str
    sentence: str  # what Breeze was saying


@dataclass(frozen=True, slots=True)
class Replying:
    """The reply grew (`text` so far, `delta` new); it is spoken sentence by sentence."""

    turn: int
    text: str
    delta: str


@dataclass(frozen=True, slots=True)
class Speaking:
    """Breeze's voice reached sentence `index` of the reply."""

    turn: int
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The user spoke over Breeze: the voice stopped and the reply was cancelled. Only
    `spoken` stays in the conversation. barge_in_ms: from the user's first sound to
    Breeze's silence (None when Breeze had not spoken yet)."""

    turn: int
    spoken: str
    unspoken: str
    barge_in_ms: float | None


@dataclass(frozen=True, slots=True)
class Problem:
    """Something failed and the conversation goes on (a transcription, a reply, the voice)."""

    error: RunnerError


@dataclass(frozen=True, slots=True)
class TurnMetrics:
    """Where a turn's time went, in ms from the end of the user's speech (as the microphone
    delivered it), each stage cumulative; None for a stage the turn did not reach."""

    end_of_turn_ms: float | None = None  # the pause was long enough: the turn is over
    transcript_ms: float | None = None  # the final transcript
    first_token_ms: float | None = None  # the reply's first text
    first_sentence_ms: float | None = None  # the first sentence's first audio synthesized
    first_audio_ms: float | None = None  # Breeze's voice is heard: voice-to-voice latency

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)

    def line(self) -> str:
        """A compact line: 'end of turn 612 · transcript 840 · first token 1102 · ...'."""
        names = {"end_of_turn_ms": "end of turn", "transcript_ms": "transcript",
                 "first_token_ms": "first token", "first_sentence_ms": "first sentence",
                 "first_audio_ms": "voice"}
        parts = [f"{label} {value:.0f} ms" for key, label in names.items()
                 if (value := getattr(self, key)) is not None]
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class TurnDone:
    """A turn ended. `reply` is what stays in the conversation: all of it, or only what was
    spoken when interrupted. finish_reason: the reply's ("stop", "length"), "interrupted",
    "error", "ignored" (no words, or Breeze's own echo) or "continued" (the user went on
    speaking before anything of the reply was heard: `user` comes again at the start of the
    next turn's message). Only "stop", "length" and "interrupted" turns join the conversation."""

    turn: int
    user: str
    reply: str
    finish_reason: str
    metrics: TurnMetrics
    error: RunnerError | None = None


@dataclass(frozen=True, slots=True)
class TalkEnded:
    """The last event: "stopped" (by the front end) or "error" (the microphone failed)."""

    reason: str
    error: RunnerError | None = None


TalkEvent = (StateChanged | Heard | EchoIgnored | Replying | Speaking | Interrupted | Problem
             | TurnDone | TalkEnded)


_NAMES = {StateChanged: "state", Heard: "heard", EchoIgnored: "echo_ignored",
          Replying: "reply", Speaking: "speaking", Interrupted: "interrupted",
          Problem: "problem", TurnDone: "turn", TalkEnded: "end"}


def event_to_dict(event: TalkEvent) -> dict[str, Any]:
    """A JSON-ready dict of the event, named by its "event" key."""
    return {"event": _NAMES[type(event)], **asdict(event)}
