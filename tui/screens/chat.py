"""The chat screen: messages, the prompt and the status bar, fed by the engine's streams."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Static

from engine import BreezeError
from engine.guardian import describe

from ..conversation import Conversation, Reply
from ..widgets.message import MessageView
from ..widgets.prompt import PromptInput
from ..widgets.status import StatusBar


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
        Binding("escape", "cancel", "Stop what is running"),
        Binding("ctrl+r", "regenerate", "Regenerate the last reply"),
        Binding("ctrl+g", "continue_reply", "Continue a stopped reply"),
        Binding("ctrl+b", "copy_reply", "Copy the last reply"),
        Binding("ctrl+n", "new_chat", "New chat"),
    ]

    def __init__(self, conversation: Conversation) -> None:
        super().__init__()
        self.conversation = conversation
        self.model_ready = False

    def compose(self) -> ComposeResult:
        yield Static(self.conversation.title, id="title")
        yield VerticalScroll(id="messages")
        with Horizontal(id="input-row"):
            yield PromptInput(id="prompt")
            yield Button("Send", id="send", variant="primary")
        yield StatusBar(id="status")

    async def on_mount(self) -> None:
        await self.show_conversation(self.conversation)
        self.query_one(PromptInput).focus()

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    @property
    def busy(self) -> bool:
        return self.conversation.reply is not None

    async def show_conversation(self, conversation: Conversation) -> None:
        self.conversation = conversation
        self.query_one("#title", Static).update(conversation.title)
        log = self.query_one("#messages", VerticalScroll)
        await log.remove_children()
        views = [MessageView(m.role, m.content, m.state, m.id) for m in conversation.messages()]
        await log.mount_all(views)
        for view, message in zip(views, conversation.messages(), strict=False):
            if message.error:
                view.set_state(message.state, message.error)
        log.scroll_end(animate=False)

    # -- sending ---------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    async def _submitted(self, event: PromptInput.Submitted) -> None:
        await self.send(event.text)

    @on(Button.Pressed, "#send")
    async def _send_pressed(self) -> None:
        text = self.query_one(PromptInput).text.strip()
        if text:
            await self.send(text)

    async def send(self, text: str) -> None:
        if self.busy:
            self.notify("A reply is still running: press Esc to stop it.", severity="warning")
            return
        self.query_one(PromptInput).clear()
        message_id = self.conversation.add_user(text)
        self.query_one("#title", Static).update(self.conversation.title)
        await self._mount(MessageView("user", text, message_id=message_id))
        await self._start(self.conversation.start_reply())

    async def _start(self, reply: Reply, view: MessageView | None = None) -> None:
        if view is None:
            view = MessageView("assistant", "", "streaming", reply.message_id)
            await self._mount(view)
        else:
            view.set_state("streaming")
        self.status.state = "thinking" if self.model_ready else "loading model…"
        self.stream_reply(reply, view)

    async def _mount(self, view: MessageView) -> None:
        log = self.query_one("#messages", VerticalScroll)
        await log.mount(view)
        log.scroll_end(animate=False)

    @work(exclusive=True, group="reply")
    async def stream_reply(self, reply: Reply, view: MessageView) -> None:
        log = self.query_one("#messages", VerticalScroll)
        shown = len(reply.full_text)
        async for result in self.conversation.stream(reply):
            self.status.update_from(result.metadata)
            if result.partial:
                if reply.full_text[shown:]:
                    self.status.state = "generating"
                    await view.append(reply.full_text[shown:])
                    shown = len(reply.full_text)
                    if log.max_scroll_y - log.scroll_y < 3:
                        log.scroll_end(animate=False)
                continue
            await self._finished(reply, view)
        log.scroll_end(animate=False)

    async def _finished(self, reply: Reply, view: MessageView) -> None:
        result = reply.result
        assert result is not None
        self.model_ready = True
        if result.error is not None:
            error = f"{result.error.code}: {result.error.message}"
            await view.finish(reply.full_text, "stopped" if reply.full_text else "error", error)
            self.status.state = "error"
        elif result.metadata.get("finish_reason") == "cancelled":
            await view.finish(reply.full_text, "stopped")
            self.status.state = "stopped"
        else:
            await view.finish(reply.full_text, "complete")
            self.status.state = "ready"
        for note in guardian_notes(result.metadata):
            view.add_note(note)

    # -- actions ---------------------------------------------------------------------------

    def action_cancel(self) -> None:
        reply = self.conversation.reply
        if reply is not None:
            reply.cancel()
            self.status.state = "stopping"

    def _last_reply_view(self) -> MessageView | None:
        views = [v for v in self.query(MessageView) if v.role == "assistant"]
        return views[-1] if views else None

    async def action_regenerate(self) -> None:
        view = self._last_reply_view()
        message = self._message(view)
        if self.busy or view is None or message is None:
            return
        await view.remove()
        await self._start(self.conversation.regenerate(message))

    async def action_continue_reply(self) -> None:
        view = self._last_reply_view()
        message = self._message(view)
        if self.busy or view is None or message is None or message.state == "complete":
            return
        await self._start(self.conversation.start_reply(continue_message=message), view)

    def _message(self, view: MessageView | None):  # type: ignore[no-untyped-def]
        if view is None:
            return None
        return next((m for m in self.conversation.messages() if m.id == view.message_id), None)

    def action_copy_reply(self) -> None:
        view = self._last_reply_view()
        if view is not None and view.text:
            self.app.copy_to_clipboard(view.text)
            self.notify("Reply copied")

    async def action_new_chat(self) -> None:
        if self.busy:
            self.action_cancel()
        conversation = Conversation(self.conversation.engine, self.conversation.store)
        conversation.params, conversation.runner = (
            self.conversation.params, self.conversation.runner)
        await self.show_conversation(conversation)

    def model_loaded(self, info: dict[str, object]) -> None:
        self.model_ready = True
        self.status.update_from(info)
        if not self.busy:
            self.status.state = "ready"

    def model_failed(self, error: BreezeError) -> None:
        self.status.state = f"model failed: {error.error.code}"
        self.notify(str(error.error), severity="error", timeout=10)
