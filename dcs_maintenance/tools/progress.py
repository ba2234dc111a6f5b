"""Progress display for the long local commands (demo, multi-tick runs, package).

A single status line on stderr, rewritten in place, only when stderr is a terminal: pipes, files,
CI logs and tests see nothing, so stdout (text or --json) stays clean.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO

MIN_INTERVAL = 0.1  # seconds between redraws


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """`[n/total] label: detail` on one line; `with Progress(...) as p: p.update(n, detail)`."""

    def __init__(self, total: int, label: str, stream: Optional[TextIO] = None, enabled: Optional[bool] = None) -> None:
        self.stream = stream or sys.stderr
        self.total = max(total, 1)
        self.label = label
        self.enabled = _is_tty(self.stream) if enabled is None else enabled
        self._last = 0.0
        self._width = 0

    def update(self, done: int, detail: str = "", force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and done < self.total and now - self._last < MIN_INTERVAL:
            return
        self._last = now
        pct = 100 * done // self.total
        text = f"[{done}/{self.total} {pct:3d}%] {self.label}" + (f": {detail}" if detail else "")
        self._write(text)

    def _write(self, text: str) -> None:
        text = text[:200]
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def clear(self) -> None:
        """Erase the line (before printing something else, and at the end)."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    close = clear

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Steps:
    """Named steps of a build (`step("downloading wheels")`), shown on the status line when on a terminal."""

    def __init__(self, stream: Optional[TextIO] = None, enabled: Optional[bool] = None) -> None:
        self._line = Progress(1, "", stream, enabled)
        self._started = time.monotonic()

    def step(self, message: str) -> None:
        if self._line.enabled:
            self._line._write(f"{time.monotonic() - self._started:5.1f}s {message}")

    def close(self) -> None:
        self._line.clear()
