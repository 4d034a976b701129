"""How a conversation becomes a prompt for a GGUF model.

The model's own template (`tokenizer.chat_template`) is used when the file has one. A file
without one gets the format its catalog entry names, else the one its architecture
(`general.architecture`) is known to be trained on, else ChatML. A base model (trained on
text, not on chat turns) gets `transcript`: a plain "User: ... / Assistant: ..." exchange,
which such models continue sensibly, with the next "User:" as a stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FORMATS", "ChatFormat", "choose"]

# The formatter adds no BOS token itself: each template starts with it.
_CHATML = (
    "{{ bos_token }}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Gemma has no system role: a system prompt opens the first user turn.
_GEMMA = (
    "{{ bos_token }}{% set system = namespace(text='') %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{% set system.text = message['content'] + '\n\n' %}"
    "{% else %}<start_of_turn>{{ 'model' if message['role'] == 'assistant' else 'user' }}\n"
    "{% if message['role'] == 'user' %}{{ system.text }}{% set system.text = '' %}{% endif %}"
    "{{ message['content'] }}<end_of_turn>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_TRANSCRIPT = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] }}\n\n"
    "{% elif message['role'] == 'user' %}User: {{ message['content'] }}\n"
    "{% else %}Assistant: {{ message['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


@dataclass(frozen=True, slots=True)
class ChatFormat:
    name: str
    template: str
    stops: tuple[str, ...] = ()  # strings that end a reply besides the end-of-turn token


FORMATS = {
    "chatml": ChatFormat("chatml", _CHATML),
    "gemma": ChatFormat("gemma", _GEMMA),
    "transcript": ChatFormat("transcript", _TRANSCRIPT, ("\nUser:", "\nAssistant:")),
}
_BY_ARCHITECTURE = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma"}


def choose(metadata: dict[str, Any], catalog_format: str | None) -> ChatFormat:
    """The format for a model with this GGUF `metadata`; `catalog_format` is what its catalog
    entry says (it wins over the file: the catalog knows a base model from a chat model)."""
    if catalog_format:
        return FORMATS[catalog_format]
    template = metadata.get("tokenizer.chat_template")
    if template:
        return ChatFormat("model", str(template))
    architecture = str(metadata.get("general.architecture", ""))
    return FORMATS[_BY_ARCHITECTURE.get(architecture, "chatml")]
