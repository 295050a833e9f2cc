"""Team approval of Claude agent tool calls, from Slack.

Agent side: ``SlackApprover`` (needs only Redis). Bot side: ``python -m bot serve``.
"""

from .agent import SlackApprover
from .settings import Settings

__all__ = ["SlackApprover", "Settings"]
