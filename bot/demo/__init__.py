"""The local playground (``python -m bot demo``): the whole product without a Slack workspace.

A page served by the worker's own aiohttp app plays the approvals channel;
clicks reach the bot as signed Slack payloads through the same Bolt
listeners; an agent (a scripted model, or Claude with ``ANTHROPIC_API_KEY``)
asks for approvals through ``SlackApprover``. See ``run.Demo``.
"""
