"""The playground in a real browser: Debian's Chromium, driven by Playwright.

A person opens the page, sees the agent's requests, and clicks, types and
switches identity; the scripted model behind the real Agent SDK and CLI
runs (or does not run) each tool. The final page is saved as a screenshot
in ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, Response, async_playwright, expect

from tests.demo_driver import Playground, playground
from tests.fakes.agent_env import clean_agent_env

pytestmark = pytest.mark.slow  # every test drives Chromium

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
ATTACKER = "attacker.test"
"""Another web site the person has open, whose script attacks the playground."""
REBOUND = "rebind.test"
"""A site's name after DNS rebinding: it resolves to 127.0.0.1, where the playground listens."""
# Flags for a sandboxed machine with no network beyond loopback; the resolver rules play the
# attackers' DNS (both names lead to loopback, where the test serves them).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    f"--host-resolver-rules=MAP {ATTACKER} 127.0.0.1, MAP {REBOUND} 127.0.0.1",
]

# Each step waits for the agent process (the CLI) to act; allow for a slow machine.
expect.set_options(timeout=30_000)


@pytest.fixture(autouse=True)
def _agent_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clean_agent_env(monkeypatch)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


async def open_page(browser: Browser, demo: Playground) -> Page:
    page = await browser.new_page(viewport={"width": 1280, "height": 800})
    await page.goto(f"{demo.url}/")
    return page


def request(page: Page, number: int):
    """The ``number``-th message in the channel (1-based)."""
    return page.locator("article.message").nth(number - 1)


async def be(page: Page, name: str) -> None:
    """Switch identity, as the page's "You are" menu does."""
    await page.get_by_label("You are").select_option(label=name)


async def test_a_newcomer_tries_every_kind_of_request(tmp_path, browser):
    work = tmp_path / "work"
    async with playground(work) as demo:
        page = await open_page(browser, demo)
        agent = page.locator("#agent")

        # 1. The request appears; Approve lets the tool run.
        first = request(page, 1)
        await expect(first).to_contain_text("echo 'hello from the approvals playground' > hello.txt")
        await expect(agent).to_contain_text("Approve it")
        await first.get_by_role("button", name="Approve", exact=True).click()
        await expect(first).to_contain_text("Approved by")
        await expect(first.get_by_role("button", name="Approve", exact=True)).to_have_count(0)

        # 2. Deny with a reason: the tool does not run and the model reads the reason.
        second = request(page, 2)
        await expect(second).to_contain_text("rm -rf data")
        assert (work / "hello.txt").read_text() == "hello from the approvals playground\n"
        await second.get_by_role("button", name="Deny", exact=True).click()
        dialog = page.get_by_role("dialog")
        await dialog.get_by_label("Reason").fill("We still need that data.")
        await dialog.get_by_role("button", name="Deny", exact=True).click()
        await expect(dialog).to_have_count(0)
        await expect(agent).to_contain_text("Reason: We still need that data.")
        await demo.said(
            "Denied in Slack by @alice (U0ALICE). The tool was not run. Reason: We still need that data."
        )

        # 3. Two of alice and bob: alice modifies (her vote), bob approves what she wrote.
        third = request(page, 3)
        await expect(third).to_contain_text("deploy.yaml")
        assert (work / "data" / "customers.csv").exists()
        await third.get_by_role("button", name="Modify").click()
        content = dialog.get_by_label("Content")
        await expect(content).to_have_value("service: web\nreplicas: 10\n")
        await content.fill("service: web\nreplicas: 3\n")
        await dialog.get_by_role("button", name="Approve").click()
        await expect(dialog).to_have_count(0)
        await expect(third).to_contain_text("1 of 2")
        await be(page, "bob (engineer)")
        await third.get_by_role("button", name="Approve", exact=True).click()
        await expect(agent).to_contain_text("changed in Slack")

        # 4. One question: a pick in the menu on the message is the answer.
        fourth = request(page, 4)
        await expect(fourth).to_contain_text("Which version should I tag?")
        assert (work / "deploy.yaml").read_text() == "service: web\nreplicas: 3\n"
        await expect(agent).to_contain_text("AskUserQuestion: 1 question: Which version should I tag?")
        await expect(fourth.get_by_role("button", name="Answer…")).to_have_count(0)
        await fourth.get_by_role("button", name="Other…").click()  # a field for one's own answer
        await expect(dialog.get_by_label("Your answer for “Other…”")).to_be_visible()
        await dialog.get_by_role("button", name="Dismiss").click()
        await expect(dialog).to_have_count(0)
        await fourth.get_by_label("Choose…").select_option(label="v2.4.0")
        await expect(fourth).to_contain_text("Answered by")
        await expect(agent).to_contain_text("Which version should I tag? → v2.4.0")
        await expect(fourth.get_by_label("Choose…")).to_have_count(0)

        # 5. Two questions in one form.
        fifth = request(page, 5)
        await expect(fifth).to_contain_text("Which environment should I deploy to?")
        await expect(agent).to_contain_text(
            "AskUserQuestion: 2 questions: Which environment should I deploy to? · Which checks should run first?"
        )
        assert "question(s)" not in demo.out.getvalue()
        await fifth.get_by_role("button", name="Answer…").click()
        await dialog.get_by_label("Environment").select_option(label="staging")
        await dialog.get_by_label("lint").check()
        await dialog.get_by_label("smoke tests").check()
        await dialog.get_by_role("button", name="Send answers").click()
        await expect(dialog).to_have_count(0)
        await expect(agent).to_contain_text("Which environment should I deploy to? → staging")
        await expect(agent).to_contain_text("Which checks should run first? → lint, smoke tests")

        # 6. Spending: bob is not on call and is told who is; casey approves.
        sixth = request(page, 6)
        await expect(sixth).to_contain_text("$25.60")
        await expect(sixth).to_contain_text("@oncall")
        await sixth.get_by_role("button", name="Approve", exact=True).click()
        await expect(page.locator("article.message", has_text="Only visible to you")).to_contain_text(
            "You are not an approver for this request"
        )
        assert not (work / "gpu.log").exists()
        await be(page, "casey (on-call)")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "playground.png"))
        await sixth.get_by_role("button", name="Approve", exact=True).click()
        await expect(agent).to_contain_text("The agent finished")
        assert (work / "gpu.log").read_text() == "rented 8 GPU-hours\n"

        # A second run asks afresh: new tool calls, new requests.
        await page.get_by_role("button", name="Run the agent again").click()
        await expect(request(page, 7)).to_contain_text(
            "echo 'hello from the approvals playground' > hello.txt"
        )
        await expect(request(page, 7).get_by_role("button", name="Approve", exact=True)).to_be_visible()
        await page.close()


async def test_each_person_sees_their_own_modal_and_hostile_text_stays_text(tmp_path, browser):
    async with playground(tmp_path / "work") as demo:
        alice, bob = await open_page(browser, demo), await open_page(browser, demo)
        await be(bob, "bob (engineer)")
        hostile = "<img src=x onerror=\"document.title='pwned'\"> *bold* <@U0BOB>"
        first = request(alice, 1)
        await (
            first.get_by_role("link", name="Reply in thread")
            .or_(first.get_by_text("Reply in thread"))
            .first.click()
        )
        thread = alice.locator("#thread")
        await thread.get_by_label("Reply in thread").fill(hostile)
        await thread.get_by_role("button", name="Send reply").click()
        await expect(thread).to_contain_text("<img src=x onerror=\"document.title='pwned'\">")
        assert await alice.title() != "pwned" and await alice.locator("#thread img").count() == 0

        # alice opens the deny form; bob, on his own page, sees no modal.
        await first.get_by_role("button", name="Deny", exact=True).click()
        await expect(alice.get_by_role("dialog")).to_be_visible()
        await expect(request(bob, 1)).to_contain_text("hello from the approvals playground")
        await expect(bob.get_by_role("dialog")).to_have_count(0)
        await alice.get_by_role("dialog").get_by_role("button", name="Cancel").click()
        await expect(alice.get_by_role("dialog")).to_have_count(0)
        assert "[denied]" not in demo.out.getvalue()


async def test_a_modal_left_open_never_comes_back(tmp_path, browser):
    """Issue 15, item 16: neither a switch of person nor a reload brings back a modal nobody closed,
    even once its request has ended; the page that left takes its modal with it."""
    async with playground(tmp_path / "work") as demo:
        page = await open_page(browser, demo)
        first = request(page, 1)
        dialog = page.get_by_role("dialog")
        await first.get_by_role("button", name="Deny", exact=True).click()
        await expect(dialog).to_be_visible()
        await be(page, "bob (engineer)")
        await expect(dialog).to_have_count(0)
        await be(page, "alice (engineer)")
        await expect(first).to_contain_text("hello from the approvals playground")
        await expect(dialog).to_have_count(0)

        # Open again; the request ends on bob's page; alice reloads hers.
        await first.get_by_role("button", name="Deny", exact=True).click()
        await expect(dialog).to_be_visible()
        bob = await open_page(browser, demo)
        await be(bob, "bob (engineer)")
        await request(bob, 1).get_by_role("button", name="Approve", exact=True).click()
        await expect(request(bob, 1)).to_contain_text("Approved by")
        await page.reload()
        await expect(first).to_contain_text("Approved by")
        await expect(dialog).to_have_count(0)
        assert await page.locator("#app").evaluate("app => !app.inert && !app.hasAttribute('aria-hidden')")
        async with asyncio.timeout(10):  # the page said it was leaving: its modal is closed
            while demo.demo.workspace.views:
                await asyncio.sleep(0.05)
        # The page is usable: the next request can be denied from it.
        await request(page, 2).get_by_role("button", name="Deny", exact=True).click()
        await expect(dialog).to_be_visible()
        await page.close()
        await bob.close()


async def test_the_app_and_alice_do_not_share_an_avatar_and_an_unknown_command_posts_nothing(
    tmp_path, browser
):
    async with playground(tmp_path / "work") as demo:
        page = await open_page(browser, demo)
        await expect(request(page, 1)).to_contain_text("hello from the approvals playground")
        composer = page.get_by_label("Message #approvals")
        await composer.fill("/foo bar")
        await composer.press("Enter")
        note = page.locator("article.message", has_text="Only visible to you")
        await expect(note).to_contain_text("/foo is not a command here, so nothing was posted.")
        await expect(note.locator(".author")).to_have_text("Slackbot")
        await expect(composer).to_have_value("")
        await composer.fill("hi all")
        await composer.press("Enter")
        mine = page.locator("article.message[data-user=U0ALICE]")
        await expect(mine).to_have_count(1)  # "/foo bar" was never posted
        await expect(mine).to_contain_text("hi all")
        bot = request(page, 1).locator(".avatar")
        alice = mine.locator(".avatar")
        assert (
            await page.locator("article.message", has_text="hi all").locator(".author").text_content()
        ) == "alice"
        assert await bot.text_content() != await alice.text_content()
        assert await bot.evaluate("a => getComputedStyle(a).borderRadius") != await alice.evaluate(
            "a => getComputedStyle(a).borderRadius"
        )
        await page.close()


ATTACK_PAGE = """<!doctype html>
<title>cute cats</title>
<iframe name="sink"></iframe>
<iframe id="framed" src="{playground}/"></iframe>
<form id="form" method="post" enctype="text/plain" action="{playground}/demo/click" target="sink">
  <input type="hidden" name='{form_name}' value='{form_value}'>
</form>
<script>
const within = (promise) => Promise.race([promise, new Promise((done) => setTimeout(() => done("timeout"), 10000))]);
const framed = within(new Promise((done) => document.getElementById("framed").onload = () => done("loaded")));
document.getElementById("form").submit();
const body = {body};
const noCors = within(fetch("{playground}/demo/click", {{ method: "POST", mode: "no-cors", body }})
  .then(() => "sent", () => "failed"));
const json = {{ "Content-Type": "application/json" }};
const cors = within(fetch("{playground}/demo/click", {{ method: "POST", headers: json, body }})
  .then((response) => "read " + response.status, () => "blocked"));
Promise.all([framed, noCors, cors]).then((results) => {{ document.title = "done: " + results.join(", "); }});
</script>
"""


@contextlib.asynccontextmanager
async def attacker_site(html: str) -> AsyncIterator[str]:
    """Serves ``html`` at http://attacker.test:PORT/ (the resolver rules send that name to loopback)."""

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://{ATTACKER}:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def test_another_site_open_in_the_browser_cannot_approve_or_frame_the_playground(tmp_path, browser):
    """The site knows the request's ids (worst case) and tries every cross-site way a browser allows."""
    work = tmp_path / "work"
    async with playground(work) as demo:
        click = demo.click_of("U0ALICE", await demo.request(1), "Approve")
        body = json.dumps({**click, "pad": ""})
        # A text/plain form sends "name=value": split the JSON so that the "=" lands inside a string.
        form_name, form_value = body[: -len('"}')], '"}'
        html = ATTACK_PAGE.format(
            playground=demo.url,
            form_name=form_name,
            form_value=form_value,
            body=json.dumps(json.dumps(click)),
        )
        async with attacker_site(html) as url:
            page = await browser.new_page()
            clicks: list[Response] = []
            page.on("response", lambda r: clicks.append(r) if r.url == f"{demo.url}/demo/click" else None)
            await page.goto(url)
            await expect(page).to_have_title("done: loaded, sent, blocked")
            async with asyncio.timeout(10):  # the form's and the no-cors fetch's answers
                while len([r for r in clicks if r.request.method == "POST"]) < 2:
                    await asyncio.sleep(0.05)
            assert {r.status for r in clicks if r.request.method == "POST"} == {403}
            framed = await (await page.query_selector("#framed")).content_frame()
            assert "playground" not in await framed.title() and await framed.locator("#messages").count() == 0
            await page.close()
        await demo.still_undecided(work)


async def test_a_rebound_name_gets_neither_the_page_nor_its_api(tmp_path, browser):
    work = tmp_path / "work"
    async with playground(work) as demo:
        click = demo.click_of("U0ALICE", await demo.request(1), "Approve")
        port = demo.url.rsplit(":", 1)[1]
        page = await browser.new_page()
        response = await page.goto(f"http://{REBOUND}:{port}/")
        assert response is not None and response.status == 421
        assert demo.token not in await page.content()
        # The rebinding site's script is same-origin with its own name; even given the secret it gets nothing.
        status = await page.evaluate(
            """async ([click, token]) => (await fetch("/demo/click", {
            method: "POST", headers: {"Content-Type": "application/json", "X-Playground-Token": token},
            body: JSON.stringify(click)})).status""",
            [click, demo.token],
        )
        assert status == 421
        await page.close()
        await demo.still_undecided(work)
