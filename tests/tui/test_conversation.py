"""A chat's replies through `Conversation`, apart from the widgets: the real llama.cpp model,
espeak-ng and the null-sink speaker."""

from __future__ import annotations

import pytest

from breeze.engine import Engine, EngineSettings, InferenceResult, Registry
from breeze.engine.guardian import make_guard
from breeze.engine.speech import SpeechSettings, speak_reply
from breeze.runners.guardian import GuardianRunner
from breeze.runners.llama_cpp import LlamaCppRunner
from breeze.runners.pyttsx3_tts import Pyttsx3Runner
from breeze.tui.conversation import Conversation
from tests.runners.test_audio_out import player, tts_sink  # noqa: F401 (fixtures)


@pytest.mark.usefixtures("tts_sink")
async def test_a_spoken_reply_ends_once_even_when_its_end_brings_text(store, player):  # noqa: F811
    # The reply ends in a number, which the guardian holds back (it could grow into a card
    # number) until the reply ends: the last text comes with the end.
    engine = Engine(Registry([LlamaCppRunner(), Pyttsx3Runner(), GuardianRunner()]),
                    EngineSettings(guard=make_guard()))
    conversation = Conversation(engine, store)
    conversation.params = {"max_tokens": 24, "temperature": 0}
    conversation.add_user("What is 12 times 12?")
    reply = conversation.start_reply(
        speak=lambda request, runner: speak_reply(engine, request, player, SpeechSettings()))
    results = [i async for i in conversation.stream(reply) if isinstance(i, InferenceResult)]
    await engine.aclose()
    final = results[-1]
    assert final.text and all(len(r.text) < len(final.text) for r in results[:-1])  # it did
    assert [r.partial for r in results].count(False) == 1  # and came once, not twice
    saved = store.messages(conversation.session_id)[-1]
    assert saved.state == "complete" and saved.content == results[-1].text
