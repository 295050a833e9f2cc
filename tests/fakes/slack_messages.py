"""The fake's messages: posting, editing, deleting and reading them back, and who is who."""

from __future__ import annotations

from typing import Any

from tests.fakes.slack_records import EphemeralMessage, PostedMessage
from tests.fakes.slack_requests import Reject, blocks_of, text_of
from tests.fakes.slack_state import SlackState
from tests.fakes.slack_workspace import (
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    USER_ID,
    FakeUser,
)


class MessagesApi(SlackState):
    """``chat.*``, ``conversations.*``, ``users.info``, ``usergroups.users.list``, ``auth.test``;
    and people's replies and slash-command answers, which the bot does not post itself."""

    def reply(
        self, channel: str, thread_ts: str, user: str, text: str, *, team: str = TEAM_ID
    ) -> PostedMessage:
        """A person replies in a thread (the test then delivers the ``message`` event, or not);
        ``team`` is the author's own workspace (another organisation's, in a shared channel)."""
        message = self._post(channel, text, [], thread_ts)
        message.user = user
        message.team = team
        return message

    def show_ephemeral(
        self, channel: str, user: str, text: str, blocks: list[dict[str, Any]]
    ) -> EphemeralMessage:
        """Show ``user`` a message only they see, as the answer to a slash command is shown
        (the bot answered it in its HTTP response, which the fake does not see)."""
        ephemeral = EphemeralMessage(channel, user, text, list(blocks), self._next_ts())
        self.ephemerals.append(ephemeral)
        return ephemeral

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Fake Team",
            "user": self.users[BOT_USER_ID].name,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel(args.get("channel")).as_dict()}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = args.get("user")
        if not isinstance(user_id, str) or not user_id:
            raise Reject("user_not_found")
        user = self.users.get(user_id)
        if user is None:
            # Any well-formed user id exists unless configured; malformed ones do not.
            if not USER_ID.match(user_id):
                raise Reject("user_not_found")
            user = FakeUser(user_id, user_id.lower())
        return {"user": user.as_dict()}

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"), posting=True)
        self._check_text_and_blocks("chat.postMessage", args, required=True)
        message = self._post(
            channel.id, text_of(args), blocks_of(args), args.get("thread_ts"), args.get("metadata")
        )
        return {"channel": channel.id, "ts": message.ts, "message": message.as_dict()}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if not channel.is_member:
            raise Reject("not_in_channel")
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        # Newest first, thread replies left out (they stay in conversations.replies), as Slack does.
        history = sorted(
            (
                m
                for m in self.messages.values()
                if m.channel == channel.id and m.thread_ts in (None, m.ts) and float(m.ts) > oldest
            ),
            key=lambda m: float(m.ts),
            reverse=True,
        )
        start = int(args.get("cursor") or 0)
        page = history[start : start + 2]  # two a page exercises the cursor
        more = start + 2 < len(history)
        messages = []
        for m in page:
            shown = m.as_dict()
            if with_metadata and m.metadata is not None:
                shown["metadata"] = m.metadata
            messages.append(shown)
        return {
            "messages": messages,
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + 2) if more else ""},
        }

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if not channel.is_member:
            raise Reject("not_in_channel")  # the bot reads only conversations it is in
        root = self.messages.get((channel.id, str(args.get("ts"))))
        if root is None:
            raise Reject("thread_not_found")
        # Real pages hold up to ``limit`` messages; two per page here exercises the cursor.
        thread = [root, *self.thread(channel.id, root.ts)]
        start = int(args.get("cursor") or 0)
        page = thread[start : start + 2]
        more = start + 2 < len(thread)
        return {
            "messages": [m.as_dict() | {"thread_ts": root.ts} for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": str(start + 2) if more else ""},
        }

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = args.get("usergroup")
        if group not in self.usergroups:
            raise Reject("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        message = self.messages.get((channel.id, str(args.get("ts"))))
        if message is None and any(
            (e.channel, e.message_ts) == (channel.id, args.get("ts")) for e in self.ephemerals
        ):
            raise Reject("cant_update_message")  # an ephemeral changes only through its response_url
        if message is None:
            raise Reject("message_not_found")
        if not message.by_bot:
            raise Reject("cant_update_message")  # a bot edits only its own messages
        self._check_text_and_blocks("chat.update", args, required=True)
        # Slack keeps fields the update does not mention; an empty list clears blocks.
        if "text" in args:
            message.text = text_of(args)
        if "blocks" in args:
            message.blocks = blocks_of(args)
        message.edits += 1
        return {"channel": channel.id, "ts": message.ts, "text": message.text, "message": message.as_dict()}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"))
        if self.messages.pop((channel.id, str(args.get("ts"))), None) is None:
            raise Reject("message_not_found")
        return {"channel": channel.id, "ts": args["ts"]}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args.get("channel"), posting=True)
        user = args.get("user")
        if not isinstance(user, str) or not USER_ID.match(user) or not channel.has_member(user):
            raise Reject("user_not_in_channel")
        self._check_text_and_blocks("chat.postEphemeral", args, required=True)
        ephemeral = EphemeralMessage(channel.id, user, text_of(args), blocks_of(args), self._next_ts())
        self.ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.message_ts}
