"""``python -m bot bench``: how fast a decision reaches the agent, and how many waits one process holds.

Everything runs on loopback in one command: a private ``redis-server``, real
``python -m bot serve`` workers, an agent process waiting in
``SlackApprover.can_use_tool``, and a stand-in for the Slack Web API. The
floors of the path (a bare Redis SPUBLISH to a subscriber, a bare aiohttp POST
to a handler that does nothing) are measured in the same run, so every
figure can be read as a multiple of what the machine allows.

A last phase runs under Slack's rate limits (``limited``): the stand-in
enforces them (``slack_limits``), sped up, and the figures are Slack's, not
the machine's: time to post a burst against the least the limits allow, 429s,
Slack writes per decision, click acks during the backlog, requests lost.

Modules: ``run`` orchestrates the phases, ``limited`` is the phase under
Slack's limits, ``processes`` starts and stops the parts, ``slack_stub`` plays
Slack (``slack_limits``: its rate limits), ``clicks`` builds signed
``block_actions`` requests, ``agent`` is the agent process, ``floor`` measures
the floors, ``report`` turns samples into the table and the JSON.

``gate_noise`` runs on its own (``python -m bot.bench.gate_noise``): it counts the
calls the gate asks Slack about that ``can_use_tool`` alone would never see.
"""
