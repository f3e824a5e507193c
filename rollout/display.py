"""Console output for the rollout commands: plain lines, and live spinners on a terminal.

When stdout is not a TTY (CI logs, pipes) rich's live rendering is off and each wait is
one line when it starts and one when it ends, so logs stay readable.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console


class Display:
    """Where the rollout commands write what they do."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(highlight=False, soft_wrap=True)

    @property
    def live(self) -> bool:
        return self.console.is_terminal

    def line(self, text: str = "") -> None:
        self.console.print(text, highlight=False)

    @contextmanager
    def waiting(self, text: str) -> Iterator[WaitStatus]:
        """Shows ``text`` with a spinner (a terminal) or as one line (anything else)."""
        status = WaitStatus(self, text)
        if self.live:
            with self.console.status(text) as live:
                status._live = live
                yield status
        else:
            self.line(f"{text} ...")
            yield status


class WaitStatus:
    """Updates the text of one wait (the spinner's text on a terminal; nothing otherwise)."""

    def __init__(self, display: Display, text: str):
        self._display = display
        self._text = text
        self._start = time.monotonic()
        self._live: Any = None

    def update(self, detail: str) -> None:
        if self._live is not None:
            elapsed = int(time.monotonic() - self._start)
            self._live.update(f"{self._text}: {detail} ({elapsed}s)")
