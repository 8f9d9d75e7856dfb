"""Response headers that keep browsers from misusing what the API serves.

Every response: no MIME sniffing, no framing (clickjacking of the chat page), no
``Referer`` leaking a page's address to other sites. The chat page and its files get a
Content Security Policy allowing only this origin's own script and style (the page has
no inline script), so injected markup could not run code even if it got in; the JSON
API gets one that allows nothing. The interactive API docs (``/docs``, ``/redoc``) load
their script from a CDN and keep no policy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SecurityHeaders", "PAGE_POLICY", "API_POLICY"]

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]
_DOCS = ("/docs", "/redoc", "/openapi.json")


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path") or "/"
        if path.startswith(_DOCS):
            policy = None
        elif path == "/" or path.startswith("/static/"):
            policy = PAGE_POLICY
        else:
            policy = API_POLICY

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in _ALWAYS if k not in present]
                if policy and b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", policy.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
