"""Headers every response carries, whichever layer answers (a route, an error handler, the
input screen, CORS): browsers must not sniff a JSON answer into a page, frame it, or send
our addresses on as a referrer; nothing we answer is kept by a cache unless the route says
so (tokens, API key and webhook secrets are shown once and must not sit in a cache); and,
when the service is served over HTTPS, browsers are told to use nothing else.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_CSP = (b"content-security-policy", b"frame-ancestors 'none'")


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, served_over_https: bool) -> None:
        self.app = app
        self.served_over_https = served_over_https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [h for h in _ALWAYS if h[0] not in present]
                if _CSP[0] not in present:
                    extra.append(_CSP)
                if b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                if self.served_over_https:
                    extra.append(HSTS)
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)
