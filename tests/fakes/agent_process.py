"""An agent host as a separate process, written as the README's defer recipe.

    python tests/fakes/agent_process.py WORKDIR CLI_ENV_JSON [SESSION_ID TOOL_USE_ID]

Runs one task in defer mode; when the run is deferred it prints
``{"deferred": {...}}``, waits for the team's decision, prints
``{"decided": state}``, resumes the session and prints ``{"result": stop_reason}``.
Given a session and tool_use_id (a restarted host), it skips straight to the
wait. Needs ``REDIS_URL``; one JSON object per stdout line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

from claude_agent_sdk import ClaudeSDKClient, ResultMessage, query

from bot import SlackApprover


def say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


async def main(workdir: str, cli_env: dict[str, str], resume_from: tuple[str, str] | None) -> None:
    async with SlackApprover.from_env(mode="defer", agent_name="restartable") as approver:
        options = approver.options(
            cwd=workdir, setting_sources=[], tools=["Bash"], env=cli_env, permission_mode="default"
        )
        if resume_from is None:
            [result] = [
                m async for m in query(prompt="do the task", options=options) if isinstance(m, ResultMessage)
            ]
            if result.deferred_tool_use is None:
                say(result=result.stop_reason)
                return
            session_id, tool_use_id = result.session_id, result.deferred_tool_use.id
            say(deferred={"session_id": session_id, "tool_use_id": tool_use_id})
        else:
            session_id, tool_use_id = resume_from

        decided = await approver.wait_for_decision(tool_use_id)
        say(decided=decided.state.value)
        async with ClaudeSDKClient(dataclasses.replace(options, resume=session_id)) as client:
            async for message in client.receive_response():
                if isinstance(message, ResultMessage):
                    say(result=message.stop_reason)


if __name__ == "__main__":
    workdir, env_json, *rest = sys.argv[1:]
    asyncio.run(main(workdir, json.loads(env_json), (rest[0], rest[1]) if rest else None))
