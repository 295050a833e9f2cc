"""Events API requests at /slack/events (the manifest subscribes to it)."""

from __future__ import annotations

import logging
import time

from tests.fakes.bot_settings import SIGNING_SECRET
from tests.fakes.slack_signing import signed_json


async def _post_event(worker, body: dict):
    raw, headers = signed_json(body, SIGNING_SECRET)
    async with worker.session.post(f"{worker.url}/slack/events", data=raw, headers=headers) as response:
        return response.status, await response.text()


async def test_url_verification_handshake(start_worker):
    worker = await start_worker()
    status, text = await _post_event(worker, {"type": "url_verification", "token": "t", "challenge": "c-123"})
    assert status == 200 and "c-123" in text


async def test_uninstall_is_logged_as_an_error(start_worker, caplog):
    worker = await start_worker()
    event = {
        "type": "event_callback",
        "team_id": "T0TEAM",
        "api_app_id": "A0TEST",
        "event_id": "Ev1",
        "event_time": int(time.time()),
        "event": {"type": "app_uninstalled"},
    }
    with caplog.at_level(logging.ERROR, logger="bot"):
        status, _text = await _post_event(worker, event)
    assert status == 200
    assert any("app_uninstalled" in r.getMessage() and "reinstall" in r.getMessage() for r in caplog.records)


async def test_every_event_the_manifest_subscribes_to_is_handled(start_worker):
    """Slack disables event subscriptions that keep failing: each one needs a listener (Bolt answers 404 otherwise)."""
    from pathlib import Path

    import yaml

    from tests.fakes.slack_event_payloads import event_callback

    manifest = yaml.safe_load((Path(__file__).resolve().parents[1] / "manifest.yml").read_text())
    worker = await start_worker()
    for subscribed in manifest["settings"]["event_subscriptions"]["bot_events"]:
        kind = subscribed.split(".")[0]  # message.channels → message
        event = {
            "type": kind,
            "user": "U0ALICE",
            "channel": "C0APPROVALS",
            "ts": "1700000000.000001",
            "text": "hi",
            "tab": "home",
        }
        assert await worker.event(event_callback(event)) == 200, subscribed
