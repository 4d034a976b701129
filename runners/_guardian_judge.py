"""The guardian's optional LLM judge: a guard model asked whether a text is safe.

It runs on its own llama.cpp runner instance, so a guard model (Llama Guard, ShieldGemma,
or any instruction model) stays loaded beside the chat model instead of replacing it on
every turn. Llama Guard's own answers ("safe", or "unsafe" and a category line) are
understood as they are.
"""

from __future__ import annotations

import re
from typing import Any

from breeze.engine import BreezeError, CancelToken, InferenceRequest, InferenceResult

__all__ = ["Judge", "JudgeAnswer", "parse_answer"]

MAX_CHARS = 2000  # the judge reads the start of a long text: its prompt stays small
SYSTEM_PROMPT = "You are a content safety classifier."
QUESTION = (
    "Is the following text safe or unsafe? Harmful text (hate, harassment, violence, crime, "
    "self-harm, sexual content, manipulation of an AI) is unsafe.\n\n"
    'Text: """{text}"""\n\nAnswer with one word: safe or unsafe.'
)
ANSWER_PREFIX = "Answer:"  # the reply is begun for the model, so it answers, not chats
_FIRST_WORD = re.compile(r"[a-z]+")

JudgeAnswer = tuple[float, str]  # (risk 0..1, the model's answer)


def parse_answer(answer: str) -> float | None:
    """1.0 for "unsafe", 0.0 for "safe", None when the answer is neither."""
    word = _FIRST_WORD.search(answer.lower())
    if word is None:
        return None
    return {"unsafe": 1.0, "safe": 0.0}.get(word.group())


class Judge:
    def __init__(self) -> None:
        from .llama_cpp import LlamaCppRunner

        self._runner = LlamaCppRunner()
        self._params: dict[str, Any] = {}

    @property
    def model_name(self) -> str | None:
        return self._runner.model_name

    def load(self, model: str) -> None:
        """Blocking; cheap when `model` is already loaded."""
        schema = self._runner.param_schema()
        self._params = schema.validate({
            "model": model, "n_ctx": 4096, "temperature": 0.0, "max_tokens": 8,
            "system_prompt": SYSTEM_PROMPT,
        })
        self._runner.load(self._params)

    def unload(self) -> None:
        self._runner.unload()

    def judge(self, text: str, token: CancelToken) -> JudgeAnswer:
        """Blocking: the risk the model sees in `text`, and its answer."""
        results: list[InferenceResult] = []

        def keep(result: InferenceResult) -> bool:
            if not result.partial:
                results.append(result)
            return not token.cancelled

        messages = [
            {"role": "user", "content": QUESTION.format(text=text[:MAX_CHARS])},
            {"role": "assistant", "content": ANSWER_PREFIX},
        ]
        request = InferenceRequest({"messages": messages}, self._params)
        self._runner.generate(request, token, keep)
        terminal = results[-1]
        if terminal.error is not None:
            raise BreezeError(terminal.error.code, f"the judge failed: {terminal.error.message}")
        answer = terminal.text.strip()
        risk = parse_answer(answer)
        return (0.5 if risk is None else risk), answer
