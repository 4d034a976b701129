"""The chat screen: messages, the prompt and the status bar. It routes keys to the app's
ChatController and renders what the controller posts: replies as they stream and are spoken,
dictation into the prompt, and talk mode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Static

from breeze.engine import BreezeError, Capability, Handle, InferenceResult
from breeze.engine.guardian import describe
from breeze.engine.speech import SentenceAudio, SentencePlaying, SpeakReply, SpeechDone, SpeechEvent
from breeze.engine.talk import Heard, Problem, Replying, Speaking, StateChanged, TalkEnded, TurnDone

from ..chat_controller import (
    ChatController,
    DictationEnded,
    DictationUpdate,
    ReplyEnded,
    ReplyStarted,
    ReplyUpdate,
    SpeakerMissing,
)
from ..config import save_app_table
from ..conversation import Conversation, Reply, ending
from ..talk_controller import TalkController, TalkUpdate
from ..voice import Voice
from ..widgets.log_panel import LogPanel
from ..widgets.message import MessageView
from ..widgets.prompt import PromptInput
from ..widgets.speech_bar import SpeechBar
from ..widgets.status import StatusBar
from .presenter import PresenterScreen


def guardian_notes(metadata: Mapping[str, Any]) -> list[str]:
    """What the guardian did to a turn, in words, when it did anything but pass it."""
    notes = []
    for key, what in (("guardian_input", "your message"), ("guardian_output", "this reply")):
        info = metadata.get(key)
        if isinstance(info, Mapping) and info.get("action") in ("warned", "filtered", "unchecked"):
            found = describe(info.get("issues") or []) or "nothing"
            notes.append(f"guardian {info['action']} {what}: {found}"
                         if info["action"] != "unchecked" else
                         f"guardian could not check {what}: {info.get('error')}")
    return notes


class ChatScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "cancel", "Stop what is running: reply, speech, dictation"),
        Binding("ctrl+t", "dictate", "Dictate from the microphone (again: stop)"),
        Binding("f5", "present", "Presenter view: large captions for a room (again: back)"),
        Binding("ctrl+s", "toggle_speech", "Speak replies: on or off"),
        Binding("ctrl+r", "regenerate", "Regenerate the last reply"),
        Binding("ctrl+g", "continue_reply", "Continue a stopped reply"),
        Binding("ctrl+b", "copy_reply", "Copy the last reply"),
        Binding("ctrl+n", "new_chat", "New chat"),
    ]

    def __init__(self, controller: ChatController) -> None:
        super().__init__()
        self.controller = controller
        controller.attach(self)
        self.presenter = PresenterScreen()  # its captions follow the chat, shown or not
        self.model_ready = False
        self._dictated: str | None = None  # the prompt as dictation left it, not yet sent
        self._tickers: dict[int, Timer] = {}  # the speech bar's clock, per spoken reply
        self.log_panel = LogPanel()  # made now: the log goes to it before the screen is up
        self.log_panel.display = False

    def compose(self) -> ComposeResult:
        yield Static(self.conversation.title, id="title")
        yield VerticalScroll(id="messages")
        yield SpeechBar(id="speech")
        with Horizontal(id="input-row"):
            yield PromptInput(id="prompt")
            yield Button("Dictate", id="mic")
            yield Button("Talk", id="talk")
            yield Button("Speak", id="speak")
            yield Button("Send", id="send", variant="primary")
        yield StatusBar(id="status")
        yield self.log_panel

    async def on_mount(self) -> None:
        # Anchored, the chat keeps its end in view at every layout while a reply grows, until
        # the user scrolls up to read; scrolling back to the end follows the reply again.
        self.query_one("#messages", VerticalScroll).anchor()
        await self.show_conversation()
        self.show_speech_setting()
        self.query_one(PromptInput).focus()

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def conversation(self) -> Conversation:
        return self.controller.conversation

    @property
    def voice(self) -> Voice:
        return self.controller.voice

    @property
    def talk(self) -> TalkController:
        return self.controller.talk

    @property
    def speech(self) -> SpeakReply | None:
        return self.controller.speech

    @property
    def dictation(self) -> Handle | None:
        return self.controller.dictation

    @property
    def busy(self) -> bool:
        return self.controller.busy

    @property
    def talking(self) -> bool:
        return self.talk.active

    @property
    def idle(self) -> bool:
        """No reply is being written or spoken."""
        return self.controller.idle

    async def show_conversation(self) -> None:
        """Show the controller's chat, from its saved messages."""
        conversation = self.conversation
        self.show_title()
        log = self.query_one("#messages", VerticalScroll)
        await log.remove_children()
        views = [MessageView(m.role, m.content, m.state, m.id) for m in conversation.messages()]
        continuable = self._continues_replies()
        for view in views:
            view.continuable = continuable
        await log.mount_all(views)
        for view, message in zip(views, conversation.messages(), strict=False):
            if message.error:
                view.set_state(message.state, message.error)
        log.scroll_end(animate=False)

    def show_title(self) -> None:
        self.query_one("#title", Static).update(self.conversation.title)

    def show_message(self, message_id: int) -> None:
        """Scroll to a message and highlight it (focused), once the chat is laid out."""

        def show() -> None:
            for view in self.query(MessageView):
                if view.message_id == message_id:
                    view.focus(scroll_visible=False)
                    view.scroll_visible(animate=False, top=True)

        self.call_after_refresh(show)

    # -- sending ---------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        await self.send(event.text)

    @on(Button.Pressed, "#send")
    async def _send_pressed(self) -> None:
        text = self.query_one(PromptInput).text_with_partial.strip()
        if text:
            await self.send(text)

    async def send(self, text: str) -> None:
        if self.talking:  # answered aloud in the conversation, as if spoken
            self.query_one(PromptInput).clear()
            self.talk.ask(text)
            return
        if self.busy:
            self.notify("A reply is still running: press Esc to stop it.", severity="warning")
            return
        prompt = self.query_one(PromptInput)
        dictating = self.dictation is not None
        dictated = self._dictated is not None or (dictating and bool(prompt.suggestion))
        if dictating and prompt.suggestion:
            self.controller.sent_as_it_stood()
            prompt.show_partial("")
        prompt.clear()
        self._dictated = None
        message_id = self.controller.add_user(text, dictated)
        self._caption_heard(text)
        self.show_title()
        await self._mount(MessageView("user", text, message_id=message_id))
        await self.controller.reply()
        self._thinking()

    def _thinking(self) -> None:
        """A reply was asked for: the status says so at once (its view comes with
        ReplyStarted)."""
        self.status.state = "thinking" if self.model_ready else "loading model…"

    @on(SpeakerMissing)
    def _speaker_missing(self, missing: SpeakerMissing) -> None:
        error = missing.error.error
        self.notify(f"{error.code}: {error.message} — the reply is not spoken",
                    severity="error", timeout=10)

    @on(ReplyStarted)
    async def _reply_started(self, started: ReplyStarted) -> None:
        if started.conversation is not self.conversation:
            return
        reply = started.reply
        view = self._view_of(reply.message_id)
        if view is None:
            view = MessageView("assistant", "", "streaming", reply.message_id)
            view.continuable = self._continues_replies()
            await self._mount(view)
        else:  # a stopped reply, continued
            view.set_state("streaming")
        if reply.speech is not None:
            bar = self.query_one(SpeechBar)
            bar.start()
            self._tickers[id(reply)] = self.set_interval(
                0.1, lambda: bar.advance(self.voice.played_ms))

    async def _mount(self, view: MessageView) -> None:
        log = self.query_one("#messages", VerticalScroll)
        await log.mount(view)
        log.scroll_end(animate=False)

    @on(ReplyUpdate)
    async def _reply_update(self, update: ReplyUpdate) -> None:
        """A step of a reply. The reply of a chat no longer shown is not: it is saved."""
        view = self._reply_view(update)
        if view is None:
            return
        try:
            await self._show(update.item, update.reply, view)
        except NoMatches:
            if _in_the_chat(view) and not self._app_closing:
                raise

    def _reply_view(self, update: ReplyStarted | ReplyUpdate | ReplyEnded) -> MessageView | None:
        if update.conversation is not self.conversation or self._app_closing:
            return None
        view = self._view_of(update.reply.message_id)
        return view if view is not None and _in_the_chat(view) else None

    async def _show(
        self, item: InferenceResult | SpeechEvent, reply: Reply, view: MessageView
    ) -> None:
        if not isinstance(item, InferenceResult):
            await self._speech_event(item, view)
            return
        self.status.update_from(item.metadata)
        if not item.partial:
            await self._finished(reply, view)
        elif new_text := reply.full_text[len(view.text):]:
            self.status.state = "generating"
            await view.append(new_text)
            self.presenter.said = reply.full_text

    @property
    def _app_closing(self) -> bool:
        """The app is exiting: its widgets are being taken down under running workers (the
        reply is in the store already; only its view is gone)."""
        return not self.app._running or not self.is_attached

    async def _speech_event(self, event: SpeechEvent, view: MessageView) -> None:
        bar = self.query_one(SpeechBar)
        if isinstance(event, SentenceAudio):  # the microphone is muted already (Voice)
            bar.queued(event.start_ms, event.end_ms)
        elif isinstance(event, SentencePlaying):
            bar.playing(event.index, event.text)
            self.presenter.speaking = event.text
            view.add_class("-speaking")
            await view.highlight(event.text)
            if not self.busy:
                self.status.state = "speaking"
        elif isinstance(event, SpeechDone) and event.error is not None and (
            event.reply is None or event.reply.error is None  # the reply's own error is shown
        ):
            self.notify(f"speech: {event.error.code}: {event.error.message}",
                        severity="error", timeout=10)

    @on(ReplyEnded)
    async def _reply_ended(self, ended: ReplyEnded) -> None:
        ticker = self._tickers.pop(id(ended.reply), None)
        if ticker is not None:
            ticker.stop()
        if ended.reply.speech is None or self.speech is not None:  # another is being spoken
            return
        self.presenter.speaking = ""
        if self._app_closing:
            return
        self.query_one(SpeechBar).stop()
        view = self._reply_view(ended)
        if view is not None:
            view.remove_class("-speaking")
            await view.highlight(None)
        if self.status.state == "speaking":
            self.status.state = "ready"

    async def _finished(self, reply: Reply, view: MessageView) -> None:
        result = reply.result
        assert result is not None
        self.model_ready = True
        if result.error is not None:
            error = f"{result.error.code}: {result.error.message}"
            await view.finish(reply.full_text, "stopped" if reply.full_text else "error", error)
            state = "error"
        else:
            kept, note = ending(result)
            await view.finish(reply.full_text, kept, note)
            self.presenter.said = reply.full_text
            state = "ready" if kept == "complete" else "stopped"
        for note in guardian_notes(result.metadata):
            view.add_note(note)
        if reply.replaces is not None and not reply.full_text:  # the reply it was to replace
            await self.show_conversation()                      # is kept: shown again
            if result.error is not None:
                self.notify(f"{result.error.code}: {result.error.message}", severity="error")
        self.status.state = state  # last: the screen is whole when the state says so

    # -- actions ---------------------------------------------------------------------------

    def action_cancel(self) -> None:
        """Stop everything running: the reply (and its speech), speech, dictation, talk."""
        if self.busy:
            self.status.state = "stopping"
        self.controller.stop()

    def _last_reply_view(self) -> MessageView | None:
        views = [v for v in self.query(MessageView) if v.role == "assistant"]
        return views[-1] if views else None

    async def action_regenerate(self) -> None:
        view = self._last_reply_view()
        message = self._message(view)
        if view is None or message is None:
            self.notify("No reply to regenerate yet: send a message first.")
            return
        if self.busy:
            return
        await view.remove()
        await self.controller.regenerate(message)
        self._thinking()

    async def action_continue_reply(self) -> None:
        view = self._last_reply_view()
        message = self._message(view)
        if view is None or message is None or message.state == "complete":
            self.notify("No stopped reply to continue: ctrl+g extends a reply that was "
                        "stopped or cut at the length limit.")
            return
        if self.busy:
            return
        if not self._continues_replies():
            self.notify("This runner does not continue a stopped reply: ctrl+r asks again.",
                        severity="warning")
            return
        await self.controller.continue_reply(message)
        self._thinking()

    def _continues_replies(self) -> bool:
        """Whether the runner the chat's next reply goes to can continue a stopped one."""
        try:
            runner = self.conversation.engine.first_runner(Capability.LLM, self.conversation.runner)
        except BreezeError:
            return False
        return runner.continues_replies

    def show_reply_hints(self) -> None:
        """Offer ctrl+g on stopped replies only where it can work (the runner may have
        changed in the settings)."""
        continuable = self._continues_replies()
        for view in self.query(MessageView):
            if view.continuable != continuable:
                view.continuable = continuable
                view.set_state(view.state, view.error)

    def _message(self, view: MessageView | None):  # type: ignore[no-untyped-def]
        if view is None:
            return None
        return next((m for m in self.conversation.messages() if m.id == view.message_id), None)

    def action_copy_reply(self) -> None:
        view = self._last_reply_view()
        if view is None or not view.text:
            self.notify("No reply to copy yet.")
            return
        self.app.copy_to_clipboard(view.text)
        self.notify("Reply copied")

    async def action_new_chat(self) -> None:
        await self.open_chat(None)

    async def open_chat(self, session_id: int | None) -> None:
        """Leave this chat for a saved one, or a new one (None): its reply, speech and talk
        mode stop; dictation into the prompt, the runner and the parameters chosen stay."""
        self.controller.open_chat(session_id)
        await self.show_conversation()
        if self.status.state in ("thinking", "generating", "stopping"):  # the left reply's
            self.status.state = "ready" if self.model_ready else "loading model…"

    # -- voice -----------------------------------------------------------------------------

    @on(Button.Pressed, "#mic")
    def action_dictate(self) -> None:
        """Dictate into the prompt until pressed again; with auto-send, a pause sends it."""
        if self.dictation is not None:
            self.controller.stop_dictation()
        elif self.talking:
            self.notify("Talk mode is listening already: press F3 to end it.")
        else:
            self.controller.dictate()
            self._show_dictation(True)

    @on(DictationUpdate)
    async def _dictation_update(self, update: DictationUpdate) -> None:
        prompt = self.query_one(PromptInput)
        self.status.mic_level = update.level_dbfs
        self.status.mic_muted = update.muted
        for text in update.finals:
            prompt.add_final(text)
        prompt.show_partial(update.partial)
        if update.error is not None:
            self.notify(f"dictation: {update.error.code}: {update.error.message}",
                        severity="error", timeout=10)
        if update.finals:
            self._dictated = prompt.text
        elif not update.partial and self._auto_send_due(update.silent_s):
            await self.send(prompt.text.strip())

    @on(DictationEnded)
    def _dictation_ended(self) -> None:
        if self.dictation is None and not self._app_closing:
            self.query_one(PromptInput).show_partial("")
            self._show_dictation(False)

    def _auto_send_due(self, silent_s: float) -> bool:
        """A pause after dictation, and the prompt is as dictation left it (never text the
        user typed or is still correcting)."""
        pause = self.voice.config.voice.auto_send_seconds
        text = self.query_one(PromptInput).text
        return (bool(pause) and silent_s >= pause and not self.busy
                and text == self._dictated and bool(text.strip()))

    def _show_dictation(self, on: bool) -> None:
        button = self.query_one("#mic", Button)
        button.label, button.variant = ("● Stop", "error") if on else ("Dictate", "default")
        self.status.listening = on
        self.status.mic_level = None
        if self.idle and self.model_ready:  # how the last reply ended is old news now
            self.status.state = "listening" if on else "ready"

    # -- talk mode: the app's TalkController runs it; this renders what it posts -----------

    @on(Button.Pressed, "#talk")
    async def _talk_pressed(self) -> None:
        await self.app.run_action("toggle_talk")

    def show_talk(self, on: bool) -> None:
        button = self.query_one("#talk", Button)
        button.label, button.variant = ("● Stop", "error") if on else ("Talk", "default")
        if not on:
            self.query_one(PromptInput).show_partial("")
            self.status.state = "ready" if self.model_ready else "loading model…"

    @on(TalkUpdate)
    async def _talk_update(self, update: TalkUpdate) -> None:
        event = update.event
        if isinstance(event, StateChanged):
            self.show_talk(True)
            self.status.state = self.presenter.state = f"talk · {event.state}"
        elif isinstance(event, Heard):
            await self._heard(event, update.user_id)
        elif isinstance(event, Replying):
            view = self._view_of(update.reply_id)
            if view is None:
                view = MessageView("assistant", "", "streaming", update.reply_id)
                await self._mount(view)
            await view.append(event.text[len(view.text):])
            self.presenter.said = event.text
        elif isinstance(event, Speaking):
            self.presenter.speaking = event.text
            if (view := self._view_of(update.reply_id)) is not None:
                view.add_class("-speaking")
                await view.highlight(event.text)
        elif isinstance(event, TurnDone):
            await self._turn_done(event, update.user_id, update.reply_id)
        elif isinstance(event, Problem):
            self.notify(f"talk: {event.error.code}: {event.error.message}", severity="error",
                        timeout=10)
        elif isinstance(event, TalkEnded):
            self.show_talk(False)
            self.presenter.state = ""
            if event.error is not None:
                self.notify(f"talk: {event.error.code}: {event.error.message}",
                            severity="error", timeout=10)

    async def _heard(self, heard: Heard, user_id: int | None) -> None:
        prompt = self.query_one(PromptInput)
        if not heard.final:
            prompt.show_partial(heard.text)
            self.presenter.heard, self.presenter.heard_final = heard.text, False
            return
        prompt.show_partial("")
        self._caption_heard(heard.text)
        self.show_title()
        await self._mount(MessageView("user", heard.text, message_id=user_id))

    async def _turn_done(self, done: TurnDone, user_id: int | None,
                         reply_id: int | None) -> None:
        if done.finish_reason == "continued":  # its words come again in the next message
            for view in [self._view_of(user_id), self._view_of(reply_id)]:
                if view is not None:
                    await view.remove()
            return
        self.presenter.speaking = ""
        self.presenter.latency = done.metrics.line()
        view = self._view_of(reply_id)
        if view is None:
            return
        self.presenter.said = done.reply
        state = {"stop": "complete", "length": "stopped"}.get(done.finish_reason,
                                                               done.finish_reason)
        error = f"{done.error.code}: {done.error.message}" if done.error else None
        view.remove_class("-speaking")
        await view.finish(done.reply, state if state != "error" or error else "error", error)
        await view.highlight(None)
        view.add_note(done.metrics.line())

    def _caption_heard(self, text: str) -> None:
        """A new turn on the presenter view: what was said to Breeze, its answer to come."""
        presenter = self.presenter
        presenter.heard, presenter.heard_final = text, True
        presenter.said = presenter.speaking = ""

    def action_present(self) -> None:
        self.app.push_screen("presenter")

    def _view_of(self, message_id: int | None) -> MessageView | None:
        if message_id is None:
            return None
        return next((v for v in self.query(MessageView) if v.message_id == message_id), None)

    @on(Button.Pressed, "#speak")
    def action_toggle_speech(self) -> None:
        config = self.voice.config
        config.speak_replies = not config.speak_replies
        if not config.speak_replies and self.speech is not None:
            self.controller.silence()  # the reply itself goes on
            self.query_one(SpeechBar).stop()
        self.show_speech_setting()
        try:
            save_app_table(config)
        except BreezeError as exc:
            self.notify(str(exc.error), severity="error")

    def show_speech_setting(self) -> None:
        on = self.voice.config.speak_replies
        button = self.query_one("#speak", Button)
        button.label, button.variant = ("Speak ✓", "success") if on else ("Speak", "default")
        self.status.speech_on = on

    @property
    def _status_free(self) -> bool:
        """No reply, speech or spoken conversation shows its own state."""
        return self.idle and not self.talking

    def model_loading(self) -> None:
        if self._status_free:
            self.status.state = "loading model…"

    def model_loaded(self, info: dict[str, object]) -> None:
        self.model_ready = True
        self.status.update_from(info)
        if self._status_free:
            self.status.state = "ready"

    def model_failed(self, error: BreezeError) -> None:
        self.status.state = f"model failed: {error.error.code}"
        self.notify(str(error.error), severity="error", timeout=10)


def _in_the_chat(view: MessageView) -> bool:
    """The view is shown: attached, and not being taken down with a chat left (its parts go
    first, while it is still attached)."""
    return view.is_attached and not view._pruning
