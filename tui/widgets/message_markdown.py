"""Textual's Markdown widget, laid out once per update of a streaming reply."""

from __future__ import annotations

from typing import Any

from textual.geometry import Size
from textual.widgets import Markdown
from textual.widgets._markdown import MarkdownBlock


class OneLayoutPass:
    """Textual lays the whole screen out a second time when a widget's virtual size changes,
    even for a widget that cannot scroll, where the second pass changes nothing. A streaming
    reply grows its blocks at every update; skipping that pass takes a third of the app's
    work while a reply streams, which the model's threads would otherwise lose on 2 cores."""

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        styles: Any = self.styles  # type: ignore[attr-defined]
        scrolls = styles.overflow_x != "hidden" or styles.overflow_y != "hidden"
        return super()._size_updated(  # type: ignore[misc, no-any-return]
            size, virtual_size, container_size, layout=layout and scrolls
        )


def _laid_out_once(block: type[MarkdownBlock]) -> type[MarkdownBlock]:
    # The same class name, so that CSS written for Textual's blocks applies unchanged.
    return type(block.__name__, (OneLayoutPass, block), {"__module__": __name__})


class MessageMarkdown(OneLayoutPass, Markdown):
    BLOCKS = {name: _laid_out_once(block) for name, block in Markdown.BLOCKS.items()}
