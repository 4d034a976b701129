"""The chat the engine puts to the default model, for the library's side of a comparison."""

from __future__ import annotations


def default_model_chat(prompt: str) -> list[dict[str, str]]:
    """`prompt` as a chat, with the system prompt the catalog gives the default model (the
    engine's runner adds it to a chat that has none)."""
    from breeze.engine.models import load_catalog

    default = next(e for e in load_catalog() if e.default and e.capability == "LLM")
    system = [{"role": "system", "content": default.system_prompt}] if default.system_prompt else []
    return [*system, {"role": "user", "content": prompt}]
