"""The chat's controller: typed replies and their speech, dictation, and talk mode, for the
chat on screen. The app owns it; the chat screen calls it on keys and renders what it posts.

    controller = ChatController(engine, store, config, session_id)
    controller.attach(screen)          # its workers run there, its messages go there
    controller.add_user("Hello")       # saved; then its reply:
    await controller.reply()           # ReplyStarted, ReplyUpdate…, ReplyEnded
    controller.dictate()               # DictationUpdate… then DictationEnded
    controller.start_talk()            # TalkUpdate… (talk_controller) then TalkEnded

Replies are saved as they stream (Conversation) whether or not their chat is still shown.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from textual.message import Message
from textual.widget import Widget

from breeze.engine import BreezeError, Engine, Handle, InferenceResult
from breeze.engine.errors import RunnerError
from breeze.engine.speech import SpeakReply, SpeechEvent
from breeze.engine.talk import TalkEnded

from .config import AppConfig
from .conversation import Conversation, Reply, Speak
from .store import Message as StoredMessage
from .store import Store
from .talk_controller import TalkController, TalkUpdate
from .voice import UNMUTE_AFTER_S, DictationText, Voice

__all__ = [
    "ChatController",
    "DictationEnded",
    "DictationUpdate",
    "ReplyEnded",
    "ReplyStarted",
    "ReplyUpdate",
    "SpeakerMissing",
]


@dataclass
class ReplyStarted(Message):
    """A reply is asked for (a new one, a regenerated one, or a stopped one continued)."""

    conversation: Conversation
    reply: Reply


@dataclass
class ReplyUpdate(Message):
    """The reply streamed a step: a result of the model, or an event of its speech."""

    conversation: Conversation
    reply: Reply
    item: InferenceResult | SpeechEvent


@dataclass
class ReplyEnded(Message):
    """The reply and its speech are over (its end is saved)."""

    conversation: Conversation
    reply: Reply


@dataclass
class SpeakerMissing(Message):
    """Speech is on but the speaker cannot open: the reply is written, not spoken."""

    error: BreezeError


@dataclass
class DictationUpdate(Message):
    """What the microphone heard: utterances to insert (once each), the one in progress, and
    how long it has been since words were last heard."""

    finals: list[str]
    partial: str
    level_dbfs: float | None
    muted: bool
    silent_s: float
    error: RunnerError | None


class DictationEnded(Message):
    """The microphone is closed."""


class ChatController:
    def __init__(self, engine: Engine, store: Store, config: AppConfig,
                 session_id: int | None = None) -> None:
        self.engine = engine
        self.voice = Voice(engine, config)
        self.talk = TalkController(engine, config)
        self.conversation = Conversation(engine, store, session_id)
        self.speech: SpeakReply | None = None  # the reply being spoken
        self.dictation: Handle | None = None  # the microphone, while dictating
        self._words: DictationText | None = None
        self._reading: dict[int, tuple[Conversation, Reply]] = {}  # replies streaming, any chat
        self._screen: Widget | None = None

    def attach(self, screen: Widget) -> None:
        """The screen showing the chat: the controller's workers run on it (they end with
        it) and its messages go to it."""
        self._screen = screen

    @property
    def busy(self) -> bool:
        """A reply is being written."""
        return self.conversation.reply is not None

    @property
    def idle(self) -> bool:
        """No reply is being written or spoken."""
        return not self.busy and self.speech is None

    # -- replies ---------------------------------------------------------------------------

    def add_user(self, text: str, dictated: bool = False) -> int:
        """Save the user's message (its chat too, with the first one); its id."""
        message_id = self.conversation.add_user(text)
        if dictated:
            self.conversation.store.mark_voice(message_id, "dictated")
        return message_id

    async def reply(self) -> Reply:
        """Ask for the reply to the last message (spoken when speech is on)."""
        return self._stream(self.conversation.start_reply(speak=await self._speaker()))

    async def regenerate(self, message: StoredMessage) -> Reply:
        return self._stream(self.conversation.regenerate(message, await self._speaker()))

    async def continue_reply(self, message: StoredMessage) -> Reply:
        return self._stream(self.conversation.start_reply(message, await self._speaker()))

    async def _speaker(self) -> Speak | None:
        """How the next reply is spoken: not at all when speech is off or there is no speaker.
        A new reply silences the one still being spoken."""
        if self.speech is not None:
            self.speech.cancel("a new reply")
        if not self.voice.config.speak_replies:
            return None
        try:
            self.voice.open_speaker()
        except BreezeError as exc:
            self._post(SpeakerMissing(exc))
            return None
        return self.voice.speak

    def _stream(self, reply: Reply) -> Reply:
        conversation = self.conversation
        self._reading[id(reply)] = conversation, reply
        if reply.speech is not None:
            self.speech = reply.speech
            conversation.store.mark_voice(reply.message_id, "spoken")
        self._post(ReplyStarted(conversation, reply))
        self._worker().run_worker(self._read(conversation, reply), group="reply")
        return reply

    async def _read(self, conversation: Conversation, reply: Reply) -> None:
        """Read the reply to its end, also when its chat is no longer shown: its end is
        saved."""
        try:
            async for item in conversation.stream(reply):
                self._post(ReplyUpdate(conversation, reply, item))
        finally:
            del self._reading[id(reply)]
            conversation.stop(reply)  # when the worker is cancelled (the app closes) mid-reply
            if reply.speech is not None and self.speech is reply.speech:
                self.speech = None
                self._worker().set_timer(UNMUTE_AFTER_S, self._unmute)
            self._post(ReplyEnded(conversation, reply))

    def _unmute(self) -> None:
        if self.speech is None:
            self.voice.mute.clear()

    def stop(self) -> None:
        """Stop what runs: the reply (with its speech), speech, dictation, talk mode (Esc)."""
        self._stop_voice_and_reply()
        if self.dictation is not None:
            self.dictation.cancel()

    def silence(self) -> None:
        """Speech was turned off: the reply being spoken goes on, unspoken."""
        if self.speech is not None:
            self.speech.silence()
            self._worker().set_timer(UNMUTE_AFTER_S, self.voice.mute.clear)

    def open_chat(self, session_id: int | None) -> Conversation:
        """Leave this chat for a saved one, or a new one (None): its reply, speech and talk
        mode stop; dictation, the runner and the parameters chosen stay."""
        self._stop_voice_and_reply()  # a spoken conversation belongs to the chat it is saved in
        old = self.conversation
        self.conversation = Conversation(old.engine, old.store, session_id)
        self.conversation.params, self.conversation.runner = old.params, old.runner
        return self.conversation

    def _stop_voice_and_reply(self) -> None:
        """The reply stops (its speech with it), or the speech still going, and talk mode."""
        if self.conversation.reply is not None:
            self.conversation.reply.cancel()
        elif self.speech is not None:
            self.speech.cancel()
        self.talk.stop()

    def close(self) -> None:
        """The app is closing: every reply stops, with its text saved (the model is free to
        unload at once), the microphone closes and the speaker goes silent."""
        for conversation, reply in list(self._reading.values()):
            conversation.stop(reply)
        if self.dictation is not None:
            self.dictation.cancel()
        if self.speech is not None:
            self.speech.cancel("the app is closing")
        self.talk.stop()

    # -- dictation -------------------------------------------------------------------------

    def dictate(self) -> None:
        """Listen until `stop_dictation`: DictationUpdate for each result."""
        self._words = DictationText()
        self.dictation = self.voice.dictate()
        self._worker().run_worker(self._listen(self.dictation, self._words), exclusive=True,
                                  group="dictation")

    def stop_dictation(self) -> None:
        if self.dictation is not None:
            self.dictation.cancel()

    def sent_as_it_stood(self) -> None:
        """The utterance in progress was sent with the prompt: its final must not follow."""
        if self._words is not None:
            self._words.skip_utterance()

    async def _listen(self, handle: Handle, words: DictationText) -> None:
        heard_at = time.monotonic()
        try:
            async for result in handle:
                finals = words.update(result)
                if finals or words.partial or result.metadata.get("hearing"):
                    heard_at = time.monotonic()
                self._post(DictationUpdate(finals, words.partial,
                                           result.metadata.get("level_dbfs"),
                                           self.voice.mute.is_set(),
                                           time.monotonic() - heard_at, result.error))
        finally:
            handle.cancel()  # a cancelled worker (the app closing) must close the microphone
            if self.dictation is handle:
                self.dictation, self._words = None, None
            self._post(DictationEnded())

    # -- talk mode -------------------------------------------------------------------------

    def start_talk(self) -> None:
        """Hold a spoken conversation in this chat until `talk.stop()`: TalkUpdate for each
        of its events, ending with TalkEnded (also when it cannot start)."""
        self._worker().run_worker(self._hold_talk(), exclusive=True, group="talk")

    async def _hold_talk(self) -> None:
        assert self._screen is not None
        try:
            await self.talk.run(self.conversation, self._screen)
        except BreezeError as exc:
            self._post(TalkUpdate(TalkEnded("error", exc.error)))

    # -- shared ----------------------------------------------------------------------------

    def _worker(self) -> Widget:
        assert self._screen is not None, "attach() the chat screen first"
        return self._screen

    def _post(self, message: Message) -> None:
        if self._screen is not None:
            self._screen.post_message(message)
