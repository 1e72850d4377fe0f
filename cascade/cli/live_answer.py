"""A streamed answer on a terminal: what remains on screen is the answer.

rich's `Live` holds the text of the attempt being streamed. Text withdrawn by a restart is
erased from the screen, not left above a note; events and notices written to stderr while
the answer streams are printed above it, never into its middle.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text


class LiveAnswer:
    """The answer being streamed, on `console` (a terminal)."""

    def __init__(self, console: Console) -> None:
        self._text = ""
        self._live = Live(
            Text(""),
            console=console,
            auto_refresh=False,  # redrawn on each piece: nothing to draw in between
            redirect_stderr=True,  # events and notices go above the answer
            redirect_stdout=False,
            vertical_overflow="visible",  # a long answer scrolls; it is not cut to the screen
        )

    def __enter__(self) -> LiveAnswer:
        self._live.__enter__()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._live.__exit__(kind, error, trace)

    @property
    def text(self) -> str:
        return self._text

    def add(self, piece: str) -> None:
        self._show(self._text + piece)

    def withdraw(self) -> None:
        """Erase the attempt's text: the next attempt starts on a clean screen."""
        self._show("")

    def _show(self, text: str) -> None:
        self._text = text
        self._live.update(Text(text), refresh=True)


class PlainAnswer:
    """The answer being streamed to a pipe or a file: printed as it comes. Withdrawn text
    cannot be taken back there; the restart notice on stderr says it is void."""

    def __init__(self) -> None:
        self._text = ""

    def __enter__(self) -> PlainAnswer:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._text and not self._text.endswith("\n"):
            print(flush=True)

    @property
    def text(self) -> str:
        return self._text

    def add(self, piece: str) -> None:
        print(piece, end="", flush=True)
        self._text += piece

    def withdraw(self) -> None:
        if self._text and not self._text.endswith("\n"):
            print(flush=True)
        self._text = ""
