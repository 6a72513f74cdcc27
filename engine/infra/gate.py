"""The server's front door: what every HTTP response carries, before Streamlit answers.

An ASGI middleware around Streamlit's own app (`web.py` mounts it; `python serve.py` runs that):
- the visitor cookie (`engine.core.quotas.COOKIE`): a page served to a browser without a valid
  one sets a new signed id, HttpOnly, SameSite=Lax, for a year; at most
  NEW_VISITORS_PER_MINUTE new ids per address (a script fetching pages to collect ids gets no
  more, and its sessions count under its address);
- headers a classroom server wants (`HEADERS`): no framing by other sites, no referrer sent to
  links the app shows, no content-type sniffing;
- `/_stcore/metrics` (Streamlit's cache sizes) answers the server's own machine only.

Nothing here knows a page; the quotas themselves are counted where the requests are served.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from engine.core import quotas
from engine.core.quotas import COOKIE, LOCAL, Window, client_address, new_visitor_cookie

NEW_VISITORS_PER_MINUTE = 60  # new visitor ids one address is given per minute (a class: 30)
COOKIE_MAX_AGE = 365 * 24 * 3600
HEADERS = ((b"x-frame-options", b"SAMEORIGIN"),
           (b"content-security-policy", b"frame-ancestors 'self'"),
           (b"referrer-policy", b"no-referrer"),
           (b"x-content-type-options", b"nosniff"))
OPERATOR_ONLY = ("/_stcore/metrics",)  # paths answered on the server's own machine only
_ISSUED = Window(60.0)


def _header(scope, name: bytes):
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def scope_address(scope) -> str:
    peer = (scope.get("client") or (None,))[0]
    return client_address(peer, _header(scope, b"x-forwarded-for"))


def has_visitor(scope) -> bool:
    raw = _header(scope, b"cookie")
    if not raw:
        return False
    try:
        cookie = SimpleCookie(raw)
    except Exception:  # noqa: BLE001  (a malformed Cookie header: as if there were none)
        return False
    morsel = cookie.get(COOKIE)
    return morsel is not None and quotas.visitor_from_cookie(morsel.value) is not None


class Gate:
    """ASGI middleware: the visitor cookie, the headers, the operator-only paths."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if any(path.endswith(p) for p in OPERATOR_ONLY) and scope_address(scope) != LOCAL:
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain"), *HEADERS]})
            await send({"type": "http.response.body", "body": b"Not found"})
            return None
        wants_cookie = scope.get("method") == "GET" and not has_visitor(scope)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() not in
                           {name for name, _ in HEADERS}]
                headers += HEADERS
                kind = dict((k.lower(), v) for k, v in headers).get(b"content-type", b"")
                if wants_cookie and kind.startswith(b"text/html"):
                    try:
                        _ISSUED.take({scope_address(scope): NEW_VISITORS_PER_MINUTE}, "")
                    except quotas.QuotaError:
                        pass  # no new id: this browser counts under its address for now
                    else:
                        value = (f"{COOKIE}={new_visitor_cookie()}; Path=/; Max-Age="
                                 f"{COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax")
                        headers.append((b"set-cookie", value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        return await self.app(scope, receive, send_with_headers)
