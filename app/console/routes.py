"""Serving the console: `index.html` at `/` and its assets under `/console/`.

The files are read once at import; only the names found in `static/` are
served. Every answer carries a strict Content-Security-Policy: scripts, styles
and connections come from this origin only, with no inline script or style, so
text the page shows (model output included) can never run as code.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from app.errors import NotFound

STATIC = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _load() -> dict[str, tuple[bytes, str]]:
    return {
        path.name: (path.read_bytes(), MEDIA_TYPES[path.suffix])
        for path in sorted(STATIC.iterdir())
        if path.suffix in MEDIA_TYPES
    }


ASSETS = _load()

router = APIRouter(tags=["console"])


def _answer(name: str) -> Response:
    body, media_type = ASSETS[name]
    return Response(body, media_type=media_type, headers=HEADERS)


@router.get("/", response_class=Response, responses={200: {"content": {"text/html": {}}}})
async def console() -> Response:
    """The console: agents, chats with every run event, paused runs, sessions."""
    return _answer("index.html")


@router.get(
    "/console/{name}",
    response_class=Response,
    responses={200: {"content": {"text/javascript": {}, "text/css": {}}}},
    include_in_schema=False,
)
async def console_asset(name: str) -> Response:
    """One of the console's modules or its stylesheet."""
    if name not in ASSETS or name == "index.html":
        raise NotFound(f"No console file {name!r}.")
    return _answer(name)
