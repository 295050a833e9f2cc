"""The playground (``python -m bot demo``): its guard's refusals and its terminal notices."""

from __future__ import annotations

DEMO_WRONG_HOST = (
    "This playground answers only at the address it was started on: open the address printed in its terminal."
)
DEMO_RUN_STOPPED = "(The run stopped here: someone chose Deny and stop.)"
DEMO_CROSS_SITE = "Refused: this request comes from another site, not from the playground's page."
DEMO_NO_TOKEN = "Refused: the playground's secret is missing or wrong. Reload the page."
DEMO_NOT_JSON = "Refused: the playground's page sends JSON bodies (Content-Type: application/json) only."
DEMO_BOT_ONLY = "Refused: this endpoint is for the bot's own clients, not for a browser."
DEMO_PAGE_NEEDS_TOKEN = (
    "This playground is listening beyond this machine's loopback, so its page opens only at the address"
    " with its secret (?token=…) printed in the terminal where it was started."
)
DEMO_EXPOSED = (
    "warning: --host {host} is not a loopback address: anyone who can reach this machine can reach the"
    " playground. Its page opens only at the address with its secret, {url} : share it only with people"
    " you would let approve. Another name you open it at needs --allow-host NAME."
)
