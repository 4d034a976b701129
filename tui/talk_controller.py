"""Talk mode in the app: the spoken conversation (engine.talk) run by a controller the app owns.
It saves each turn in the chat on screen (the user's message marked dictated, the reply
spoken) and posts what happens to the chat screen as messages; the screen only renders."""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual.message import Message
from textual.message_pump import MessagePump

from breeze.engine import Engine
from breeze.engine.talk import (
    Heard,
    Replying,
    TalkEnded,
    TalkEvent,
    TurnDone,
)

from .config import AppConfig
from .conversation import PERSIST_EVERY_S, Conversation
from .talking import TalkOptions, TalkSession, open_talk

__all__ = ["TalkController", "TalkUpdate"]

_KEPT = {"stop": "complete", "length": "stopped", "interrupted": "interrupted"}


@dataclass
class TalkUpdate(Message):
    """Something happened in the conversation. `user_id` / `reply_id`: the saved messages of
    the event's turn (None before they exist)."""

    event: TalkEvent
    user_id: int | None = None
    reply_id: int | None = None


class TalkController:
    def __init__(self, engine: Engine, config: AppConfig) -> None:
        self.engine = engine
        self.config = config
        self.session: TalkSession | None = None
        self._held = False  # from the start of `run` (models loading) to its end
        self._stop_asked = False
        self._typed: list[str] = []  # while it starts, answered once it listens
        self._user: dict[int, int] = {}  # turn -> its saved user message
        self._reply: dict[int, int] = {}  # turn -> its saved reply
        self._saved_at: dict[int, float] = {}

    @property
    def active(self) -> bool:
        """A conversation is held, or starting."""
        return self._held

    async def run(self, conversation: Conversation, screen: MessagePump) -> None:
        """Hold the conversation until stopped (run it in a worker): load the models, open the
        devices, and post every event to `screen`. BreezeError when it cannot start."""
        history = conversation.history()
        self._held, self._stop_asked, self._typed = True, False, []
        try:
            self.session = session = await open_talk(self.engine, self.config, TalkOptions(),
                                                     history)
        except BaseException:
            self._held = False
            raise
        if self._stop_asked:  # stopped while it started: it ends at once, as any stop
            session.talk.stop()
        for text in self._typed:
            session.talk.ask(text)
        try:
            async for event in session.talk:
                user_id, reply_id = self._save(conversation, event)
                screen.post_message(TalkUpdate(event, user_id, reply_id))
                if isinstance(event, TalkEnded):
                    break
        finally:
            self.session = None
            self._held = False
            await session.aclose()
            self._user.clear()
            self._reply.clear()

    def ask(self, text: str) -> None:
        """A message typed while talking: answered aloud, in the conversation."""
        if self.session is not None:
            self.session.talk.ask(text)
        elif self._held:
            self._typed.append(text)

    def stop(self) -> None:
        if self.session is not None:
            self.session.talk.stop()
        elif self._held:
            self._stop_asked = True

    def _save(self, conversation: Conversation, event: TalkEvent) -> tuple[int | None, int | None]:
        """The chat keeps what was said, as it is said."""
        store = conversation.store
        turn = getattr(event, "turn", None)
        if isinstance(event, Heard) and event.final:
            message_id = conversation.add_user(event.text)
            if not event.typed:
                store.mark_voice(message_id, "dictated")
            self._user[event.turn] = message_id
        elif isinstance(event, Replying):
            reply_id = self._reply.get(event.turn)
            if reply_id is None:
                assert conversation.session_id is not None
                reply_id = store.add(conversation.session_id, "assistant", "", "streaming",
                                     voice="spoken")
                self._reply[event.turn] = reply_id
            if time.monotonic() - self._saved_at.get(reply_id, 0.0) >= PERSIST_EVERY_S:
                store.update(reply_id, event.text, "streaming")
                self._saved_at[reply_id] = time.monotonic()
        elif isinstance(event, TurnDone):
            self._end_turn(conversation, event)
        if turn is None:
            return None, None
        return self._user.get(turn), self._reply.get(turn)

    def _end_turn(self, conversation: Conversation, done: TurnDone) -> None:
        store = conversation.store
        reply_id = self._reply.get(done.turn)
        if done.finish_reason == "continued":  # the message comes again with the next turn
            for message_id in (self._user.get(done.turn), reply_id):
                if message_id is not None:
                    store.remove_message(message_id)
            return
        if reply_id is None:
            return
        state = _KEPT.get(done.finish_reason, "error")
        error = f"{done.error.code}: {done.error.message}" if done.error else None
        if state == "error" and error is None:
            error = done.finish_reason
        store.update(reply_id, done.reply, state, error,
                     {"talk": done.metrics.to_dict()})

