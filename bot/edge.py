"""``POST /slack/events``: what a request must be before Bolt sees it, and what it is answered.

In order: the body arrives within ``HTTP_BODY_TIMEOUT`` (else 408) and within
``HTTP_MAX_BODY`` (else 413); it carries one valid, fresh Slack signature
(else 401); it is a shape Slack sends, down to every field Bolt and the
listeners read (else 400, see ``slack.envelopes``); no worker took this very
request before (a replay: see below). Then Bolt dispatches it, and a failure
inside is a 503 when Redis or the network failed, a 400 otherwise; never a
500. None of the refusals changes anything, and each is logged.

A replay of an interaction or a command gets 409: Slack never resends those
(docs.slack.dev: interactions are not retried), so only someone replaying a
captured request sees it, and the answer says plainly that nothing happened.
A replay of an Events API request gets an empty 200: Slack retries events
that it thinks failed, and a non-2xx answer would make it retry again and
finally turn the subscription off; the event was handled once already.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
from redis.exceptions import DataError, RedisError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from .slack import envelopes
from .slack.replays import SignedRequests
from .tasks import describe

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")

INFRASTRUCTURE = (RedisError, OSError, TimeoutError, aiohttp.ClientError)
"""Failures of what a listener relies on (a 503: try again), not of the request."""


class SlackEdge:
    """The request handler for ``/slack/events``."""

    def __init__(
        self, bolt: AsyncApp, verifier: SignatureVerifier, signed: SignedRequests, *, body_timeout: float
    ) -> None:
        self.bolt = bolt
        self.verifier = verifier
        self.signed = signed
        self.body_timeout = body_timeout

    async def handle(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await request.read()
        except TimeoutError:
            log.warning(
                "rejected a Slack request whose body took over %g s (HTTP_BODY_TIMEOUT)", self.body_timeout
            )
            return _refuse(408, "request body too slow")
        if _is_ssl_check(body, request.content_type):
            # Slack's certificate probe carries nothing and changes nothing; Bolt
            # answers it before checking any signature, as Slack expects a 200.
            return web.Response(status=200)
        try:
            body.decode("utf-8")  # the signature check decodes it, and would raise
        except UnicodeDecodeError:
            log.warning("rejected a Slack request whose body is not UTF-8")
            return _refuse(400, "body is not UTF-8")
        signed = self._signature(request, body)
        if signed is None:
            log.warning("rejected a request with a missing, invalid or stale Slack signature")
            return _refuse(401, "invalid signature")
        signature, timestamp = signed
        try:
            data = envelopes.parse(body, request.content_type)
        except envelopes.Malformed as malformed:
            log.warning("rejected a malformed Slack request: %s", malformed)
            return _refuse(400, str(malformed))
        try:
            first = await self.signed.first_use(signature, timestamp)
        except (RedisError, OSError) as exc:
            log.error(
                "cannot tell whether this Slack request was seen before (%s): not handled", describe(exc)
            )
            return _refuse(503, "cannot check for replays right now")
        if not first:
            log.warning("ignored a replay of a signed Slack request (%s)", data.get("type") or "command")
            if request.content_type == envelopes.JSON:
                return web.Response(status=200)
            return _refuse(409, "this request was already handled")
        return await self._dispatch(request, body.decode("utf-8"), data)

    def _signature(self, request: web.Request, body: bytes) -> tuple[str, str] | None:
        """The request's signature and timestamp if they are valid and fresh."""
        signature, timestamp = _header(request, SIGNATURE_HEADER), _header(request, TIMESTAMP_HEADER)
        # slack_sdk raises on a non-numeric timestamp (int()) and on a non-ASCII
        # signature (hmac.compare_digest): only Slack's own shapes reach it.
        if signature is None or not _SIGNATURE.fullmatch(signature):
            return None
        if timestamp is None or not _TIMESTAMP.fullmatch(timestamp):
            return None
        return (signature, timestamp) if self.verifier.is_valid(body, timestamp, signature) else None

    async def _dispatch(self, request: web.Request, raw: str, data: dict[str, Any]) -> web.Response:
        try:
            headers: Any = request.headers  # Bolt reads any mapping of names to values
            bolt_request = AsyncBoltRequest(body=raw, query=request.query_string, headers=headers)
            if bolt_request.body != data:
                # Bolt reads any form whose text holds "payload" as an interaction
                # and finds none ("/approvals" typed in #payload-team): give it the
                # request as checked.
                bolt_request.body = data
                bolt_request.context = build_async_context(AsyncBoltContext({}), data)
        except Exception as exc:  # a shape envelopes does not know Bolt chokes on
            log.error("rejected a Slack request Bolt cannot parse (%s)", describe(exc), exc_info=exc)
            return _refuse(400, "request not understood")
        response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)


def answer_failures(bolt: AsyncApp) -> None:
    """Bolt answers 500 to anything a middleware or listener raises: answer 503 when Redis
    or the network failed (Slack may try again), 400 when the request could not be handled."""

    async def failed(error: Exception) -> BoltResponse:
        if isinstance(error, INFRASTRUCTURE) and not isinstance(error, DataError):
            log.error("a Slack request failed: %s", describe(error), exc_info=error)
            return BoltResponse(status=503, body="")
        if isinstance(error, SlackApiError):
            # Slack refused what the listener asked (an expired trigger_id, a
            # view it would not open): its answer says why, a traceback would not.
            log.warning(
                "a Slack request could not be handled (answered 400): Slack answered %s",
                error.response.get("error") if error.response else error,
            )
            return BoltResponse(status=400, body="")
        log.error("a Slack request could not be handled (answered 400): %s", describe(error), exc_info=error)
        return BoltResponse(status=400, body="")

    bolt.error(failed)


def _header(request: web.Request, name: str) -> str | None:
    """The header's value if it was sent exactly once (Bolt reads the first of several, slack_sdk the last)."""
    values = request.headers.getall(name, [])
    return values[0] if len(values) == 1 else None


def _is_ssl_check(body: bytes, content_type: str) -> bool:
    if content_type != envelopes.FORM or b"ssl_check" not in body:
        return False
    try:
        fields = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return False
    return fields.get("ssl_check") == "1" and "payload" not in fields and "command" not in fields


def _refuse(status: int, why: str) -> web.Response:
    return web.json_response({"error": why}, status=status)
