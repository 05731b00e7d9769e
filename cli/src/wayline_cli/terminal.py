"""The CLI's rich consoles: as wide as the terminal, and LOG_WIDTH columns when the output is a file or a pipe
(a CI log, `wayline demo > demo.txt`), where rich would otherwise assume 80 and cut the demo's tables
(addresses, data directories, action names). `COLUMNS`, when set, wins as rich reads it.

They never turn `:name:` into an emoji: what they print comes from users and servers too (a cookie id
`cookie:42:`, a message naming `:fire:`). Consoles that print what others wrote (resource lists, events) are
made with `markup=False`, so `[sale]` stays text and `[/b]` does not stop the command with a MarkupError; the
others escape such text (`rich.markup.escape`) where they print it beside their own markup."""

from __future__ import annotations

import os
import sys

from rich.console import Console

__all__ = ["LOG_WIDTH", "console"]

LOG_WIDTH = 160


def console(*, stderr: bool = False, highlight: bool = True, markup: bool = True) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if "COLUMNS" in os.environ or stream.isatty() else LOG_WIDTH
    return Console(stderr=stderr, highlight=highlight, width=width, markup=markup, emoji=False)
