"""Pure Block Kit builders: domain objects in, Slack JSON out.

No I/O here. Every size is cut to ``limits`` and every piece of tool input
goes through ``mrkdwn`` so it can neither ping anyone nor break the layout.
Each module builds one thing a person sees (``request_message``, ``modals``,
``full_input``, ``lists``) or one part of it; ``kit`` holds the pieces.
"""
