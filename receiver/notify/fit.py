"""Fitting a message into its medium's limits: cut the longest part, say how much was left out,
and link to the full result.

A message is a list of parts, each a list of lines (a table's rows, the failing tests). While
the whole is over the limit, the longest part loses lines from its end and gains one line that
says how many of its lines were left out and where to read them all. Whole lines go, so no
escape or link is ever cut in half.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

GITHUB_COMMENT: Final = 65_536
GITHUB_DESCRIPTION: Final = 140
SLACK_TEXT: Final = 40_000
SLACK_SECTION: Final = 3_000
SLACK_HEADER: Final = 150
SLACK_BLOCKS: Final = 50

# (how many lines were left out) -> the line saying so, in the medium's markup
Note = Callable[[int], str]


class Part(msgspec.Struct, kw_only=True):
    lines: list[str]
    note: Note  # says how many of its lines were left out
    cut: int = 0  # lines left out so far

    @property
    def size(self) -> int:
        return sum(len(line) + 1 for line in self.shown)

    @property
    def shown(self) -> list[str]:
        return [*self.lines, self.note(self.cut)] if self.cut else self.lines


def fit(parts: list[Part], limit: int, fixed: int = 0) -> list[Part]:
    """Cut the longest parts until ``fixed`` (what is never cut) plus the parts is at most
    ``limit`` characters; a part may end with no line but its note."""
    for _ in range(sum(len(part.lines) for part in parts) + 1):
        over = fixed + sum(part.size for part in parts) - limit
        if over <= 0:
            break
        longest = max((p for p in parts if p.lines), key=lambda p: p.size, default=None)
        if longest is None:
            break
        _shorten(longest, over)
    return parts


def _shorten(part: Part, over: int) -> None:
    """Drop lines from the end until the part is ``over`` characters shorter (or empty)."""
    target = part.size - over
    while part.lines:
        part.lines.pop()
        part.cut += 1
        if part.size <= target:
            return


def lines_within(lines: list[str], limit: int, note: Note, sep: str = "\n") -> str:
    """``lines`` joined, cut to at most ``limit`` characters with ``note`` saying how many went."""
    part = fit([Part(lines=list(lines), note=note)], limit)[0]
    text = sep.join(part.shown)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def words_within(words: list[str], limit: int, sep: str = ", ") -> str:
    """As many of ``words`` as fit in ``limit`` characters, then ``+N``: a commit status's
    description."""
    for keep in range(len(words), -1, -1):
        text = sep.join(words[:keep]) + (f" +{len(words) - keep}" if keep < len(words) else "")
        if len(text) <= limit:
            return text
    return f"+{len(words)}"[:limit]
