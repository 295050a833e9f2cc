"""Starts the playground in the test's event loop and clicks it through its page API.

The browser tests click the real page; these helpers do what the page's
script does (the same JSON requests, with the secret read from the page as
the script reads it), for tests about the server side.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bot.demo.page import TOKEN_HEADER
from bot.demo.run import Demo

TOKEN_META = re.compile(r'<meta name="playground-token" content="([^"]+)">')


class Playground:
    """A running demo, its console output, and a person's hands on its page API."""

    def __init__(self, demo: Demo, out: io.StringIO, session: aiohttp.ClientSession, token: str) -> None:
        self.demo = demo
        self.out = out
        self.session = session
        self.url = demo.url
        self.token = token
        self.headers = {TOKEN_HEADER: token}
        """What the page's script sends with each request."""

    async def state(self, user: str = "U0ALICE", client: str = "") -> dict[str, Any]:
        """What ``user`` sees on the page ``client`` (the page's own id; see ``bot.demo.workspace``)."""
        state = f"{self.url}/demo/state"
        params = {"user": user, "client": client}
        async with self.session.get(state, params=params, headers=self.headers) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        sent = {**self.headers, **(headers or {})}
        async with self.session.post(f"{self.url}{path}", json=body, headers=sent) as response:
            return response.status, await response.json()

    async def request(self, number: int) -> dict[str, Any]:
        """The ``number``-th request message (1-based), once it is posted."""
        async with asyncio.timeout(30):
            while True:
                roots = [m for m in (await self.state())["messages"] if not m["ephemeral"]]
                if len(roots) >= number:
                    return roots[number - 1]
                await asyncio.sleep(0.05)

    async def click(
        self, user: str, message: dict[str, Any], label: str, client: str = ""
    ) -> tuple[int, dict[str, Any]]:
        block_id, action_id = button(message, label)
        return await self.post(
            "/demo/click",
            {
                "user": user,
                "ts": message["ts"],
                "block_id": block_id,
                "action_id": action_id,
                "selected": None,
                "client": client,
            },
        )

    async def open_view(self, user: str, client: str = "") -> dict[str, Any]:
        """The modal open for ``user`` on the page ``client`` once it shows a form (not the loading placeholder)."""
        async with asyncio.timeout(10):
            while True:
                view = (await self.state(user, client))["view"]
                if view is not None and any(b["type"] == "input" for b in view["blocks"]):
                    return view
                await asyncio.sleep(0.05)

    async def submit(
        self, user: str, view: dict[str, Any], values: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        return await self.post("/demo/submit", {"user": user, "view_id": view["id"], "values": values})

    def click_of(self, user: str, message: dict[str, Any], label: str) -> dict[str, Any]:
        """The page's JSON for a click on ``label`` (what an attacker who guessed the ids would send)."""
        block_id, action_id = button(message, label)
        return {
            "user": user,
            "ts": message["ts"],
            "block_id": block_id,
            "action_id": action_id,
            "selected": None,
        }

    async def still_undecided(self, workdir: Path) -> None:
        """Proof that nothing decided the first request: a real Deny still lands, and the model reads it.

        Had anything approved it, the Deny button would be gone (or the bot would answer "already approved")."""
        first = await self.request(1)
        assert (await self.click("U0ALICE", first, "Deny"))[0] == 200
        view = await self.open_view("U0ALICE")
        reason = {"reason": {"reason_input": "the real decision"}}
        assert await self.submit("U0ALICE", view, reason) == (200, {"ok": True})
        out = await self.said("[denied]")
        assert "Reason: the real decision" in out and "[allowed]" not in out
        assert not (workdir / "hello.txt").exists()

    async def said(self, text: str) -> str:
        """The console output, once it contains ``text``."""
        async with asyncio.timeout(30):
            while text not in self.out.getvalue():
                await asyncio.sleep(0.05)
        return self.out.getvalue()


def button(message: dict[str, Any], label: str) -> tuple[str, str]:
    for block in message["blocks"]:
        for element in [*block.get("elements", []), block.get("accessory") or {}]:
            if element.get("type") == "button" and element["text"]["text"] == label:
                return block["block_id"], element["action_id"]
    raise AssertionError(f"no {label!r} button in {message['blocks']}")


@contextlib.asynccontextmanager
async def playground(workdir: Path, **options: Any) -> AsyncIterator[Playground]:
    out = io.StringIO()
    workdir.mkdir(parents=True, exist_ok=True)
    async with Demo.start(workdir=workdir, out=out, port=0, **options) as demo:
        async with aiohttp.ClientSession() as session:
            # The page as this machine opens it, with the secret in its address when it needs it.
            query = urlsplit(demo.page_url).query
            token = await page_token(session, f"{demo.url}/" + (f"?{query}" if query else ""))
            assert token, "the page carries no secret"
            yield Playground(demo, out, session, token)


async def page_token(
    session: aiohttp.ClientSession, page_url: str, headers: dict[str, str] | None = None
) -> str:
    """The secret the page carries, read from it as its script reads it."""
    async with session.get(page_url, headers=headers) as response:
        assert response.status == 200, await response.text()
        found = TOKEN_META.search(await response.text())
    return found.group(1) if found else ""
