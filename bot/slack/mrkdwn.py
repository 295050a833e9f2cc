"""Make untrusted text inert in Slack: no mentions, no broken layout.

Tool input comes from a model that may have read hostile content, so it may
hold ``<!channel>``, ``<@U…>``, mrkdwn, backtick fences, control characters
or megabytes of text.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_BACKTICK_RUN = re.compile(r"`(?=`)")
_ZERO_WIDTH_SPACE = "\u200b"


def clean(value: str) -> str:
    """Replace control characters and lone surrogates (they break JSON or the layout)."""
    return _CONTROL.sub("\ufffd", value)


def escape(value: str) -> str:
    """Escape the three characters Slack parses for links and mentions."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _inert_code(value: str) -> str:
    # A zero-width space between backticks keeps them visible but stops a
    # ``` inside the input from closing our code block.
    return _BACKTICK_RUN.sub("`" + _ZERO_WIDTH_SPACE, escape(clean(value)))


def fit(value: str, budget: int, render=_inert_code) -> tuple[str, int]:
    """Render the longest prefix of ``value`` whose rendering fits ``budget``.

    Returns the rendering and how many characters of ``value`` were left out.
    Escaping only lengthens text, so no more than ``budget`` characters of
    ``value`` can fit: huge inputs cost no more than small ones.
    """
    rendered = render(value[:budget])
    if len(rendered) <= budget and len(value) <= budget:
        return rendered, 0
    low, high = 0, min(len(value), budget)
    while low < high:  # longest prefix that fits, by bisection
        mid = (low + high + 1) // 2
        if len(render(value[:mid])) <= budget:
            low = mid
        else:
            high = mid - 1
    return render(value[:low]), len(value) - low


def code_block(value: str, budget: int) -> tuple[str, int]:
    """A fenced code block of at most ``budget`` characters, and the count left out."""
    fence = "```"
    body, hidden = fit(value, budget - 2 * len(fence) - 2)
    return f"{fence}\n{body}\n{fence}", hidden


def plain(value: str, budget: int) -> str:
    """Untrusted text for a ``plain_text`` object (rendered literally by Slack)."""
    value = clean(value)
    return value if len(value) <= budget else value[: budget - 1] + "…"
