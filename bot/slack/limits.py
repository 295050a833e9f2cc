"""Block Kit limits (docs.slack.dev, Block Kit reference), in one place.

Slack rejects a payload that breaks any of them (``invalid_blocks``,
``msg_too_long``, ``view_too_large``), so the builders cut text to these
sizes themselves and say that they did.
"""

MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
SECTION_TEXT = 3000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 3000
BUTTON_TEXT = 75
MODAL_TITLE = 24
MODAL_BUTTON = 24
PLAIN_TEXT_INPUT = 3000
SELECT_OPTIONS = 100
CHECKBOX_OPTIONS = 10
OPTION_TEXT = 75
"""Option text and description (and value, kept well under its own limit)."""
MESSAGE_TEXT = 4000
"""Top-level ``text``: Slack truncates at 40,000, but 4,000 is safe for ``chat.update``."""

PREVIEW_TEXT = 2000
"""How much of one input field a request message shows before pointing to the full view.

Below ``SECTION_TEXT`` so that escaping and the code fence still fit."""
NOTIFICATION_SUMMARY = 150
"""How much of the input the push-notification text carries."""

MESSAGE_TEXT_BUDGET = 11_000
"""Characters of text all of a message's blocks may hold together, counted as
``mrkdwn.size`` counts them (escaped, astral characters twice). Slack answers
``msg_blocks_too_long`` above roughly 12,000 (undocumented; bolt-js #2509):
this leaves a margin."""

VIEW_SIZE = 250_000
"""Bytes of a view's JSON Slack accepts, roughly (it answers ``view_too_large``
above; undocumented)."""
VIEW_BUDGET = 150_000
"""Bytes of JSON one page of the "View full input" modal holds: well inside ``VIEW_SIZE``."""

SIGNATURE_WINDOW = 300
"""Seconds either side of now a request's ``X-Slack-Request-Timestamp`` verifies
(slack_sdk ``SignatureVerifier``; docs.slack.dev, "Verifying requests from Slack")."""
