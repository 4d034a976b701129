"""The Breeze app: `create_app` is the factory both the CLI and the tests use."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import platformdirs
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen

from breeze.engine import BreezeError, Capability, Engine

from .chat_controller import ChatController
from .config import AppConfig, engine_settings, load_app_config, save_app_config
from .conversation import Conversation
from .screens.chat import ChatScreen
from .screens.help import HelpScreen
from .screens.sessions import Found, SessionsScreen
from .screens.settings import SettingsScreen
from .store import Store
from .talk_controller import TalkController
from .voice import Voice
from .widgets.log_panel import PanelHandler

# Text updates per second the app paints: enough to read as live, few enough that painting
# leaves the CPU to generation on a two-core laptop.
APP_EMIT_INTERVAL_MS = 80


class BreezeApp(App[None]):
    CSS_PATH = "app.tcss"
    # Below 60 columns the prompt keeps the room: the buttons' keys still work.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (60, "-wide")]
    TITLE = "Breeze"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("f1", "help", "Keys"),
        Binding("ctrl+o", "sessions", "Open a saved chat"),
        Binding("ctrl+l", "toggle_log", "Show or hide the log"),
        Binding("f2", "settings", "Settings"),
        Binding("f3", "toggle_talk", "Talk: a hands-free spoken conversation (again: stop)"),
    ]

    def __init__(
        self, engine: Engine, store: Store, config: AppConfig, session_id: int | None = None,
        present: bool = False,
    ) -> None:
        super().__init__()
        self.present = present  # open on the presenter view
        self.engine = engine
        self.store = store
        self.config = config
        self.controller = ChatController(engine, store, config, session_id)
        self.chat = ChatScreen(self.controller)
        self._log_handler: PanelHandler | None = None

    @property
    def conversation(self) -> Conversation:
        """The chat on screen."""
        return self.controller.conversation

    @property
    def voice(self) -> Voice:
        return self.controller.voice

    @property
    def talk(self) -> TalkController:
        return self.controller.talk

    def on_mount(self) -> None:
        self.push_screen(self.chat)
        self.install_screen(self.chat.presenter, "presenter")  # kept while not shown
        if self.present:
            self.push_screen("presenter")
        self._log_handler = PanelHandler(self.chat.log_panel)
        root = logging.getLogger()
        root.addHandler(self._log_handler)
        if root.getEffectiveLevel() > logging.INFO:
            root.setLevel(logging.INFO)
        if self.store.interrupted:
            self.notify(f"{self.store.interrupted} reply cut short last time is kept, "
                        "marked interrupted.")
        for problem in self.store.problems:
            self.notify(problem, title="Saved chats", severity="error", timeout=30)
        for problem in self.config.problems:
            self.notify(problem, title="Settings", severity="warning", timeout=20)
        self.preload()

    async def on_unmount(self) -> None:
        if self._log_handler is not None:
            logging.getLogger().removeHandler(self._log_handler)
        self.controller.close()
        await self.engine.aclose()
        self.voice.close()

    @work(exclusive=True, group="preload")
    async def preload(self) -> None:
        """Load the model in the background; the prompt works meanwhile."""
        self.chat.model_loading()
        try:
            info = await self.engine.preload(
                Capability.LLM, runner=self.conversation.runner, params=self.conversation.params
            )
        except BreezeError as exc:
            if self._running:
                self.chat.model_failed(exc)
            return
        if self._running:  # not when the app closed while the model loaded
            self.chat.model_loaded(info)

    @property
    def _over_the_chat(self) -> bool:
        """The help, the saved chats and the settings open from the chat only, by key or from
        the palette: not a second time over themselves, or over each other."""
        return not isinstance(self.screen, ModalScreen)

    def action_help(self) -> None:
        if not self._over_the_chat:
            return
        bindings = [*self.BINDINGS, *ChatScreen.BINDINGS]
        self.push_screen(HelpScreen([b for b in bindings if isinstance(b, Binding)]))

    def action_sessions(self) -> None:
        if not self._over_the_chat:
            return
        export_dir = Path(platformdirs.user_documents_dir()) / "breeze"
        self.push_screen(SessionsScreen(self.store, export_dir), self._open_session)

    async def _open_session(self, session_id: int | Found | None) -> None:
        """The saved chats closed: open the one chosen, or keep the open one as it now is
        (renamed, or deleted: then a new chat); a search hit opens its chat at the message."""
        if isinstance(session_id, Found):
            found = session_id
            if found.session_id != self.conversation.session_id:
                await self.chat.open_chat(found.session_id)
            self.chat.show_title()
            self.chat.show_message(found.message_id)
            return
        if session_id == self.conversation.session_id:  # the open chat: it stays as it is
            session_id = None
        if session_id is None:
            current = self.conversation.session_id
            if current is not None and not self.store.has_session(current):
                await self.chat.open_chat(None)
            else:
                self.chat.show_title()
            return
        await self.chat.open_chat(session_id)

    def action_settings(self) -> None:
        if not self._over_the_chat:
            return
        from breeze.engine.models import load_catalog

        models = [m.id for m in load_catalog() if m.capability == "LLM"]
        screen = SettingsScreen(self.engine.registry, self.config, models)
        self.push_screen(screen, self._apply_settings)

    def _apply_settings(self, config: AppConfig | None) -> None:
        if config is None:
            return
        try:
            save_app_config(config)
        except BreezeError as exc:
            self.notify(str(exc.error), severity="error")
            return
        self.config = self.voice.config = self.talk.config = config
        self.chat.show_speech_setting()
        fresh = engine_settings(config)
        self.engine.settings.runner_params = fresh.runner_params
        self.engine.settings.preferred_runners = fresh.preferred_runners
        self.engine.settings.guard = fresh.guard
        self.chat.show_reply_hints()
        self.notify("Settings saved")
        self.preload()

    def action_toggle_talk(self) -> None:
        """Start talk mode, or end it."""
        if self.talk.active:
            self.talk.stop()
        elif not self.chat.idle:
            self.notify("A reply is still running: press Esc to stop it first.",
                        severity="warning")
        else:
            self.controller.stop_dictation()
            self.chat.show_talk(True)
            self.chat.status.state = "talk · starting…"
            self.controller.start_talk()

    def action_toggle_log(self) -> None:
        panel = self.chat.log_panel
        panel.display = not panel.display

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Keys":  # Textual's key panel: Breeze's own help lists every key
                yield command
        yield SystemCommand("New chat", "Start a new conversation", self.chat.action_new_chat)
        yield SystemCommand("Stop", "Stop the reply, speech and dictation (Esc)",
                            self.chat.action_cancel)
        yield SystemCommand("Dictate", "Dictate into the prompt from the microphone (ctrl+t)",
                            self.chat.action_dictate)
        yield SystemCommand("Talk", "A hands-free spoken conversation; cut in any time (F3)",
                            self.action_toggle_talk)
        yield SystemCommand("Presenter view", "Large captions of what Breeze hears and says (F5)",
                            self.chat.action_present)
        yield SystemCommand("Speak replies", "Turn spoken replies on or off (ctrl+s)",
                            self.chat.action_toggle_speech)
        yield SystemCommand("Regenerate", "Ask again for the last reply",
                            self.chat.action_regenerate)
        yield SystemCommand("Continue", "Continue a stopped reply",
                            self.chat.action_continue_reply)
        yield SystemCommand("Copy reply", "Copy the last reply", self.chat.action_copy_reply)
        yield SystemCommand("Saved chats", "Resume, rename, delete or export chats",
                            self.action_sessions)
        yield SystemCommand("Log", "Show or hide the log panel", self.action_toggle_log)
        yield SystemCommand("Keys", "Every key Breeze knows", self.action_help)
        yield SystemCommand("Settings", "Runner, model and parameters", self.action_settings)


def create_app(
    engine: Engine | None = None, store: Store | None = None, session_id: int | None = None,
    present: bool = False,
) -> BreezeApp:
    config = load_app_config()
    if engine is None:
        from breeze.runners import builtin_registry

        settings = engine_settings(config, emit_interval_ms=APP_EMIT_INTERVAL_MS)
        engine = Engine(builtin_registry(), settings)
    return BreezeApp(engine, store or Store(), config, session_id, present)


def run_app(present: bool = False) -> None:
    create_app(present=present).run()
