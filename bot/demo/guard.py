"""Who may use the playground: its own page, at the address it was started on.

Every web site its user visits can reach a server on the user's loopback: a
site can POST a form to ``http://127.0.0.1:3000/demo/click`` (an HTML form or
a ``no-cors`` fetch is a CORS "simple request": the browser sends it without
asking the server first), and DNS rebinding makes the site's own name resolve
to 127.0.0.1, so that its script reads and writes the playground as if it were
the playground's own page. The guard stops both before any handler runs:

- the ``Host`` header must name this server (421 otherwise): a rebound name
  never does, since the browser sends the name it resolved;
- the page's API answers only its own origin (``Origin``, else
  ``Sec-Fetch-Site``, else ``Referer``; 403), a secret made at each start that
  the page carries (403), and, for changes, ``application/json`` bodies (415),
  which no form can send and which a cross-site script can send only after a
  CORS preflight, which nothing here answers with CORS headers;
- the bot's own endpoints (the Slack Web API stand-in, ``/slack/events``,
  ``response_url``) refuse anything a browser sends (403);
- no page may frame the playground (clickjacking).

Routes are classified by the route aiohttp matched, not by the raw path
(``/api/%2e%2e/demo/click`` routes to ``/demo/click``), and anything not
listed here is page API: a new route needs the secret until it is listed.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .. import text
from ..web import HEALTHZ_PATH, SLACK_EVENTS_PATH
from .interactions import RESPONSE_PATH
from .page import PAGE_PATH, STATIC_PATH, TOKEN_HEADER, TOKEN_PARAM
from .slack_api import API_PATH

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
"""The names a browser on this machine reaches a loopback server by."""

SAFE_METHODS = frozenset({"GET", "HEAD"})

BROWSER_HEADERS = ("Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode")
"""Browsers add these (fetch metadata) to what a page sends; the bot's HTTP clients never do."""

SECURITY_HEADERS = {
    # Clickjacking: no other site may show the page in a frame and steer a click onto Approve.
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    # "same-origin", not "no-referrer": under no-referrer the Fetch spec sends the page's own
    # POSTs with "Origin: null", which the origin check refuses. This still keeps a page URL
    # that carries ?token= out of the Referer of any link clicked to another site.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


class Route(enum.Enum):
    """What a route is, for the guard."""

    PAGE = "page"  # the HTML page: carries the secret
    STATIC = "static"  # its script and style: no data, no secret
    BOT = "bot"  # called by the bot's own clients, never by a browser
    API = "api"  # the page's API: its own origin, the secret, JSON


ROUTES = {
    PAGE_PATH: Route.PAGE,
    STATIC_PATH: Route.STATIC,
    API_PATH: Route.BOT,
    SLACK_EVENTS_PATH: Route.BOT,
    RESPONSE_PATH: Route.BOT,
    HEALTHZ_PATH: Route.BOT,
}
"""Every route that is not page API, by its aiohttp canonical path."""


def is_loopback(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ``::1``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """``0.0.0.0`` or ``::``: every address of this machine."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def url_host(host: str) -> str:
    """``host`` as it stands in a URL or a Host header: IPv6 addresses in brackets."""
    host = host.strip("[]").lower()
    return f"[{host}]" if ":" in host else host


def reachable_host(host: str) -> str:
    """Where this machine's own clients reach a server bound to ``host`` (loopback for a wildcard)."""
    if is_wildcard(host):
        return "[::1]" if ":" in host else "127.0.0.1"
    return url_host(host)


@dataclass(frozen=True)
class Guard:
    """The playground's Host allow-list and per-start secret; see the module docstring."""

    hosts: frozenset[str]
    """``Host`` header values accepted, lower case, with the port."""
    token: str
    """The per-start secret the page's API needs."""
    token_in_page: bool
    """Loopback only: the page is served to anyone who reaches it, with the secret inside."""

    @classmethod
    def create(cls, host: str, port: int, also: Iterable[str] = ()) -> Guard:
        """The guard of a server bound to ``host:port``; ``also``: further names it is reached by.

        A wildcard bind is reached by loopback and by this machine's name; a
        bind to one address, by that address. Any other name (a DNS name, a
        VM's address) must be given in ``also``.
        """
        names = {url_host(name) for name in also}
        if is_wildcard(host):
            names |= {*LOOPBACK_NAMES, url_host(socket.gethostname())}
        else:
            names.add(url_host(host))
            if is_loopback(host):
                names |= set(LOOPBACK_NAMES)
        hosts = {f"{name}:{port}" for name in names}
        if port == 80:  # browsers leave out the scheme's default port
            hosts |= names
        return cls(frozenset(hosts), secrets.token_urlsafe(32), token_in_page=is_loopback(host))

    def install(self, app: web.Application) -> None:
        """Check every request before any other middleware or handler, and harden every response."""
        app.middlewares.insert(0, self.guard)
        app.on_response_prepare.append(_harden)

    @web.middleware
    async def guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The middleware: a refused request never reaches its handler."""
        refused = self.refusal(request)
        if refused is not None:
            return refused
        response: web.StreamResponse = await handler(request)
        return response

    def has_token(self, given: str | None) -> bool:
        """Whether ``given`` is the secret (in constant time)."""
        if given is None:
            return False
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.token.encode())

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why ``request`` may not reach its handler, as the answer to send; None if it may."""
        route = self._route(request)
        reply = _text_refusal if route is Route.PAGE else _json_refusal
        hosts = request.headers.getall("Host", [])
        if len(hosts) != 1 or hosts[0].lower() not in self.hosts:
            # The answer names no host: a rebinding site's script can read it, and the names are not its business.
            return reply(421, text.demo.DEMO_WRONG_HOST)
        if route is Route.STATIC:
            return None
        if route is Route.BOT:
            if any(name in request.headers for name in BROWSER_HEADERS):
                return reply(403, text.demo.DEMO_BOT_ONLY)
            return None
        if route is Route.PAGE:
            if self.token_in_page or self.has_token(request.query.get(TOKEN_PARAM)):
                return None
            return reply(403, text.demo.DEMO_PAGE_NEEDS_TOKEN)
        safe = request.method in SAFE_METHODS
        if not _same_origin(request, f"http://{hosts[0].lower()}", safe):
            return reply(403, text.demo.DEMO_CROSS_SITE)
        # EventSource cannot set headers, so a read may carry the secret in its URL; a change may not.
        given = request.headers.get(TOKEN_HEADER)
        if given is None and safe:
            given = request.query.get(TOKEN_PARAM)
        if not self.has_token(given):
            return reply(403, text.demo.DEMO_NO_TOKEN)
        if not safe and request.content_type != "application/json":
            return reply(415, text.demo.DEMO_NOT_JSON)
        return None

    @staticmethod
    def _route(request: web.Request) -> Route:
        resource = request.match_info.route.resource
        return ROUTES.get(resource.canonical, Route.API) if resource is not None else Route.API


def _same_origin(request: web.Request, own: str, safe: bool) -> bool:
    """Whether nothing the browser says about the request's origin names another one.

    Browsers send ``Origin`` with every POST and every cross-origin request;
    fetch metadata says ``same-site`` for another port of the same host, which
    is another origin (another local server's page) and is refused too.
    Clients that are not browsers send none of these; the secret still binds them.
    """
    origin = request.headers.get("Origin")
    if origin is not None and origin.lower() != own:
        return False
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in (("same-origin", "none") if safe else ("same-origin",)):
        return False
    referer = request.headers.get("Referer")
    if origin is None and referer is not None:
        parts = urlsplit(referer)
        if f"{parts.scheme}://{parts.netloc}".lower() != own:
            return False
    return True


async def _harden(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    # The page carries the secret: no cache keeps a copy.
    response.headers.setdefault("Cache-Control", "no-store")


def _json_refusal(status: int, message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


def _text_refusal(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n", content_type="text/plain")
