"""Make untrusted text inert in Slack: no mentions, no broken layout, always within limits.

Tool input comes from a model that may have read hostile content, so it may
hold ``<!channel>``, ``<@U…>``, mrkdwn, backtick fences, control characters
or megabytes of text.

Slack counts a text's length *after* escaping (``&`` becomes ``&amp;``, five
characters) and may count an astral character (most emoji) as two, so every
cut here is made on the escaped text, measured by :func:`size`, and never
inside an entity (``&amp;``) or one of our own ``<…>`` tokens (a mention or date).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BACKTICK_RUN = re.compile(r"`(?=`)")
_ZERO_WIDTH_SPACE = "\u200b"
_ASTRAL = re.compile(r"[\U00010000-\U0010ffff]")
_TOKEN = re.compile(r"&(?:amp|lt|gt);|<[^<>\n]{1,500}>")
"""What a cut must not split: an entity, or a mention/date/link in angle brackets."""
_LONGEST_TOKEN = 502
ELLIPSIS = "…"


def size(value: str) -> int:
    """The length Slack may count: astral characters (emoji) count two (UTF-16 code units)."""
    return len(value) + len(_ASTRAL.findall(value))


_PRIVATE_USE = ((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))
"""Co: fixed by Unicode's stability policy, so listed rather than looked up."""
_FORMAT_PLANES = (range(0x20000), range(0xE0000, 0xE1000))
"""Where Unicode puts format characters (Cf) and the line/paragraph separators."""


@functools.cache
def _unseen() -> re.Pattern[str]:
    # Format characters (Cf: bidi overrides and isolates, zero-width characters,
    # tag characters), line/paragraph separators (Zl, Zp), from this Python's
    # Unicode tables once (a few tens of ms), and private use (Co).
    ranges: list[list[int]] = []
    for plane in _FORMAT_PLANES:
        for point in plane:
            if unicodedata.category(chr(point)) in ("Cf", "Zl", "Zp"):
                if ranges and ranges[-1][1] == point - 1:
                    ranges[-1][1] = point
                else:
                    ranges.append([point, point])
    ranges += [[low, high] for low, high in _PRIVATE_USE]
    return re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]")


def _named(match: re.Match[str]) -> str:
    return f"⟦U+{ord(match.group()):04X}⟧"


def clean(value: str) -> str:
    """Replace what would break JSON or the layout, or change what a reader reads.

    Control characters and lone surrogates become "\ufffd". Characters a reader
    cannot see as themselves become their visible name (``⟦U+202E⟧``): a
    right-to-left override or an isolate makes Slack's client draw the rest of
    a command reversed, so an approver would read other text than the shell
    runs ("Trojan Source"), and tag characters hide text outright."""
    return _unseen().sub(_named, _CONTROL.sub("\ufffd", value))


def escape(value: str) -> str:
    """Escape the three characters Slack parses for links and mentions."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _prefix_within(value: str, budget: int) -> int:
    """How many leading characters of ``value`` have a :func:`size` of at most ``budget``."""
    if size(value) <= budget:
        return len(value)
    used = 0
    for index, char in enumerate(value):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            return index
    return len(value)


def cut(markdown: str, budget: int, *, more: str = ELLIPSIS) -> str:
    """Fit already-escaped mrkdwn (or plain text) to ``budget`` as Slack counts it.

    The cut falls before any entity or ``<…>`` token it would split, and
    ``more`` marks it. Text that fits comes back unchanged.
    """
    if size(markdown) <= budget:
        return markdown
    end = _prefix_within(markdown, max(0, budget - size(more)))
    for token in _TOKEN.finditer(markdown, max(0, end - _LONGEST_TOKEN), end + _LONGEST_TOKEN):
        if token.start() < end < token.end():
            end = token.start()
            break
    return markdown[:end] + more


def inline(value: str, budget: int) -> str:
    """Untrusted text for mrkdwn, escaped, then fitted to ``budget`` (marked "…" when cut)."""
    # Escaping only lengthens: no more than budget + 1 characters are needed to know.
    return cut(escape(clean(value[: budget + 1])), budget)


def inline_inert(value: str, budget: int) -> str:
    """As :func:`inline`, for text set beside our code fences (a field's name above its
    before/after): no backtick run in it can open or close a fence."""
    return cut(_BACKTICK_RUN.sub("`" + _ZERO_WIDTH_SPACE, escape(clean(value[: budget + 1]))), budget)


def unfenced_ends(body: str) -> str:
    """An inert code body for a fence on the same line (```body```): a backtick at either end
    would join the fence into a longer run, and the fence would no longer close where ours does."""
    if body.startswith("`"):
        body = _ZERO_WIDTH_SPACE + body
    if body.endswith("`"):
        body += _ZERO_WIDTH_SPACE
    return body


def _inert_code(value: str) -> str:
    # A zero-width space between backticks keeps them visible but stops a
    # ``` inside the input from closing our code block.
    return _BACKTICK_RUN.sub("`" + _ZERO_WIDTH_SPACE, escape(clean(value)))


def fit(value: str, budget: int, render: Callable[[str], str] = _inert_code) -> tuple[str, int]:
    """Render the longest prefix of ``value`` whose rendering fits ``budget`` (by :func:`size`).

    Returns the rendering and how many characters of ``value`` were left out.
    Escaping only lengthens text, so no more than ``budget`` characters of
    ``value`` can fit: huge inputs cost no more than small ones. A prefix
    never ends inside an entity, as entities come only from the rendering.
    """
    budget = max(0, budget)
    rendered = render(value[:budget])
    if len(value) <= budget and size(rendered) <= budget:
        return rendered, 0
    low, high = 0, min(len(value), budget)
    while low < high:  # longest prefix that fits, by bisection
        mid = (low + high + 1) // 2
        if size(render(value[:mid])) <= budget:
            low = mid
        else:
            high = mid - 1
    return render(value[:low]), len(value) - low


def _code_size(value: str) -> int:
    """:func:`size` of :func:`inert_code`'s rendering: exact by construction (escapes,
    the zero-width spaces between backticks, unseen characters shown by name), and
    made of string operations that run in C."""
    return size(_inert_code(value))


def split(value: str, budget: int) -> list[str]:
    """``value`` cut into consecutive pieces whose inert rendering (as in
    :func:`code_block`) each fits ``budget``; joined, the pieces are ``value``.

    Each piece is the longest that fits (at least one character), found by
    bisection on counts made in C: a 2 MB input is split in a few tenths of
    a second, not a Python loop per character.
    """
    pieces: list[str] = []
    start = 0
    while True:
        end = min(len(value), start + max(1, budget))  # every character counts at least one
        if _code_size(value[start:end]) > budget:
            low, high = start + 1, end - 1
            while low < high:
                mid = (low + high + 1) // 2
                if _code_size(value[start:mid]) <= budget:
                    low = mid
                else:
                    high = mid - 1
            end = low
        pieces.append(value[start:end])
        start = end
        if start >= len(value):
            return pieces


def code_block(value: str, budget: int) -> tuple[str, int]:
    """A fenced code block of at most ``budget`` characters, and the count left out."""
    fence = "```"
    body, hidden = fit(value, budget - 2 * len(fence) - 2)
    return f"{fence}\n{body}\n{fence}", hidden


def inert_code(value: str) -> str:
    """``value`` as the body of a code block: escaped, and no backtick run can close the fence."""
    return _inert_code(value)


def plain(value: str, budget: int) -> str:
    """Untrusted text for a ``plain_text`` object (rendered literally by Slack), marked "…" when cut.

    Measured as if escaped: whether Slack counts ``&`` in plain text as
    ``&amp;`` is undocumented, and a text cut too short is better than a
    message that cannot be posted.
    """
    value = clean(value[: budget + 1])
    if size(escape(value)) <= budget and len(value) <= budget:
        return value
    _, hidden = fit(value, budget - size(ELLIPSIS), render=escape)
    return value[: len(value) - hidden] + ELLIPSIS
