"""The mask view: one episode token by token, trained tokens (loss mask 1) in green.

Each token gets its own background shade, alternating, so token boundaries are visible; the
myPT tags are drawn in bold. This is what the training loss sees: the same ids and mask the
trainer reads from the prepared dataset.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

MAX_SHOWN = 4096  # tokens drawn (a longer episode is cut, with a note)

# (trained, tag) -> a pair of styles that alternate token by token
STYLES = {
    (True, False): ("bold #9be49b on #103d10", "bold #9be49b on #1c5a1c"),
    (True, True): ("bold #d2f5d2 on #103d10", "bold #d2f5d2 on #1c5a1c"),
    (False, False): ("#b8b8b8 on #262626", "#b8b8b8 on #363636"),
    (False, True): ("bold #8fa8d8 on #262626", "bold #8fa8d8 on #363636"),
}


@dataclass(frozen=True)
class TokenPiece:
    text: str  # the token's text ("" when it only starts a multi-byte character)
    trained: bool
    tag: bool


def mask_tokens(ids: np.ndarray, mask: np.ndarray, tok) -> list[TokenPiece]:
    """Each token of an episode decoded on its own (a character split across tokens shows on
    the token that completes it), with its mask bit and whether it is a myPT tag."""
    out: list[TokenPiece] = []
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for i, m in zip(np.asarray(ids).tolist(), np.asarray(mask).tolist()):
        if tok.is_tag(i):
            out.append(TokenPiece(utf8.decode(b"", final=True) + tok.id_to_tag[i], bool(m), True))
            utf8.reset()
        else:
            out.append(TokenPiece(utf8.decode(tok.token_bytes(i)), bool(m), False))
    tail = utf8.decode(b"", final=True)
    if tail and out:
        last = out[-1]
        out[-1] = TokenPiece(last.text + tail, last.trained, last.tag)
    return out


def render_tokens(pieces: list[TokenPiece]) -> Text:
    """The pieces as styled text; a newline inside a token shows as ↵ and breaks the line."""
    text = Text()
    for n, p in enumerate(pieces):
        style = STYLES[(p.trained, p.tag)][n % 2]
        shown = p.text.replace("\n", "↵\n") if p.text else ""
        text.append(shown, style=style)
    return text


LEGEND = Text.assemble(("trained", STYLES[(True, False)][0]), " (loss mask 1)  ",
                       ("not trained", STYLES[(False, False)][0]), "  ",
                       ("<tags>", STYLES[(False, True)][0]), "  shades alternate at each token")


class MaskView(VerticalScroll):
    """An episode with its loss mask, scrollable."""

    DEFAULT_CSS = """
    MaskView { height: 1fr; border: round $primary-darken-2; padding: 0 1; }
    MaskView #mask-title { text-style: bold; }
    MaskView #mask-legend { margin-bottom: 1; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.pieces: list[TokenPiece] = []

    def compose(self):
        yield Static("No episode shown.", id="mask-title")
        yield Static(LEGEND, id="mask-legend")
        yield Static("", id="mask-text")

    def show(self, title: str, ids: np.ndarray, mask: np.ndarray, tok) -> None:
        cut = len(ids) > MAX_SHOWN
        self.pieces = mask_tokens(ids[:MAX_SHOWN], mask[:MAX_SHOWN], tok)
        body = render_tokens(self.pieces)
        if cut:
            body.append(f"\n... {len(ids) - MAX_SHOWN} more tokens not shown", style="dim")
        self.query_one("#mask-title", Static).update(title)
        self.query_one("#mask-text", Static).update(body)
        self.scroll_home(animate=False)

    def show_message(self, title: str) -> None:
        self.pieces = []
        self.query_one("#mask-title", Static).update(title)
        self.query_one("#mask-text", Static).update("")
