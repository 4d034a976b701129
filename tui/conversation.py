"""A chat session's logic, apart from its widgets: history, replies in flight, persistence."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from breeze.engine import Engine, Handle, InferenceRequest, InferenceResult
from breeze.engine.speech import ReplyDone, ReplyText, SpeakReply, SpeechEvent

from .store import Message, Store

PERSIST_EVERY_S = 0.5  # how often a streaming reply is written to the database

# Starts a spoken reply: engine.speech.speak_reply with the app's speaker.
Speak = Callable[[InferenceRequest, str | None], SpeakReply]


@dataclass
class Reply:
    """One assistant reply being streamed (and maybe spoken: `speech`); `prefix` is the text
    of a reply it continues."""

    message_id: int
    handle: Handle | None
    speech: SpeakReply | None = None
    prefix: str = ""
    replaces: int | None = None  # a regenerated reply: the message it takes the place of
    text: str = ""
    result: InferenceResult | None = None
    _persisted_at: float = field(default=0.0)

    @property
    def full_text(self) -> str:
        return self.prefix + self.text

    def cancel(self) -> None:
        if self.speech is not None:
            self.speech.cancel()
        elif self.handle is not None:
            self.handle.cancel()


class Conversation:
    def __init__(self, engine: Engine, store: Store, session_id: int | None = None) -> None:
        self.engine = engine
        self.store = store
        self.session_id = session_id  # created with the first message
        self.params: dict[str, Any] = {}
        self.runner: str | None = None
        self.reply: Reply | None = None

    @property
    def title(self) -> str:
        return self.store.title(self.session_id) if self.session_id else "New chat"

    def messages(self) -> list[Message]:
        return self.store.messages(self.session_id) if self.session_id else []

    def history(self, leave_out: int | None = None) -> list[dict[str, str]]:
        """What the model sees: every user message and every reply with text in it (stopped
        and interrupted replies included, error notices and `leave_out` left out)."""
        return [
            {"role": m.role, "content": m.content}
            for m in self.messages()
            if m.role in ("user", "assistant") and m.content and m.state != "error"
            and m.id != leave_out
        ]

    def add_user(self, text: str) -> int:
        if self.session_id is None or not self.store.has_session(self.session_id):
            self.session_id = self.store.new_session(" ".join(text.split())[:60])
        return self.store.add(self.session_id, "user", text)

    def start_reply(
        self, continue_message: Message | None = None, speak: Speak | None = None,
        replacing: Message | None = None,
    ) -> Reply:
        """Submit the conversation; a stopped reply given as `continue_message` is extended.
        With `speak`, the reply is spoken as it is written. A reply `replacing` another is
        asked for without it."""
        history = self.history(leave_out=replacing.id if replacing else None)
        if continue_message is not None:
            message_id, prefix = continue_message.id, continue_message.content
            self.store.update(message_id, prefix, "streaming")
        else:
            assert self.session_id is not None, "a reply needs a message to answer"
            message_id, prefix = self.store.add(self.session_id, "assistant", "", "streaming"), ""
        request = InferenceRequest({"messages": history}, dict(self.params))
        replaces = replacing.id if replacing else None
        if speak is not None:
            self.reply = Reply(message_id, None, speak(request, self.runner), prefix, replaces)
        else:
            self.reply = Reply(message_id, self.engine.submit(request, runner=self.runner),
                               prefix=prefix, replaces=replaces)
        return self.reply

    def regenerate(self, message: Message, speak: Speak | None = None) -> Reply:
        """Ask again for `message`. It is dropped once the new reply has text; a new reply
        stopped or failed before any text leaves it in place."""
        return self.start_reply(speak=speak, replacing=message)

    async def stream(self, reply: Reply) -> AsyncIterator[InferenceResult | SpeechEvent]:
        """The reply's results, written to the store as they come and when it ends; for a
        spoken reply, its speech events after them, until its speech ends."""
        if reply.speech is None:
            assert reply.handle is not None
            async for result in reply.handle:
                yield self._took(reply, result)
            return
        async for event in reply.speech:
            if isinstance(event, ReplyText):
                if event.result.partial:  # the terminal result comes once, as ReplyDone
                    yield self._took(reply, event.result)
            elif isinstance(event, ReplyDone):
                yield self._took(reply, event.result)
            else:
                yield event

    def _took(self, reply: Reply, result: InferenceResult) -> InferenceResult:
        reply.result = result
        if "text" in result.outputs:
            reply.text = result.text
        if result.partial:
            now = time.monotonic()
            if now - reply._persisted_at >= PERSIST_EVERY_S:
                reply._persisted_at = now
                self.store.update(reply.message_id, reply.full_text, "streaming")
        else:
            self._finish(reply, result)
        return result

    def stop(self, reply: Reply) -> None:
        """Cancel `reply` and save what it wrote as stopped, now: the app is closing, and the
        reply's own end would come after its worker is gone."""
        if reply.result is not None and not reply.result.partial:
            return  # it has ended, and was saved then
        reply.cancel()
        reply.result = InferenceResult.success({}, {"finish_reason": "cancelled"})
        self._finish(reply, reply.result)

    def _finish(self, reply: Reply, result: InferenceResult) -> None:
        metadata = _kept_metadata(result.metadata)
        if result.error is not None:
            state = "error" if not reply.full_text else "stopped"
            error = f"{result.error.code}: {result.error.message}"
        else:
            state, error = ending(result)
        self.store.update(reply.message_id, reply.full_text, state, error, metadata)
        if reply.replaces is not None:
            self.store.remove_message(reply.replaces if reply.full_text else reply.message_id)
        if self.reply is reply:
            self.reply = None


LENGTH_NOTE = "stopped at the length limit"


def ending(result: InferenceResult) -> tuple[str, str | None]:
    """How a reply that ended without an error is kept: its state, and why it stopped."""
    reason = result.metadata.get("finish_reason")
    if reason == "cancelled":
        return "stopped", None
    if reason == "length":  # cut mid-sentence by max_tokens: it can be continued
        return "stopped", LENGTH_NOTE
    return "complete", None


def _kept_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("runner_name", "model_name", "finish_reason", "ttft_ms", "tokens_per_second",
            "tokens_generated")
    return {k: metadata[k] for k in keys if k in metadata}
