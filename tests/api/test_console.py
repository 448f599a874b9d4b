"""The console at `/`: one page and its assets from the package, under a strict
Content-Security-Policy, using the public API only (the browser tests in
tests/console drive it)."""

from __future__ import annotations

import re

import httpx

from app.console.routes import ASSETS

MODULES = sorted(name for name in ASSETS if name.endswith(".js"))


async def test_the_console_is_served_at_the_root_with_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    header = response.headers["content-security-policy"]
    policy = dict(part.strip().split(" ", 1) for part in header.split(";"))
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    page = response.text
    assert '<script type="module" src="/console/main.js"></script>' in page
    assert '<link rel="stylesheet" href="/console/console.css">' in page
    assert not re.search(r"<script>|<script [^>]*>[^<]", page)  # no inline script
    assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page)  # no inline style or handler


async def test_every_asset_is_served_with_its_type_and_nothing_else_is(
    client: httpx.AsyncClient,
) -> None:
    assert {"main.js", "api.js", "sse.js", "console.css", "index.html"} <= set(ASSETS)
    for name in ASSETS:
        if name == "index.html":
            continue
        response = await client.get(f"/console/{name}")
        assert response.status_code == 200, name
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        assert response.headers["content-type"] == f"{kind}; charset=utf-8"
        assert "default-src 'self'" in response.headers["content-security-policy"]
    for missing in ("index.html", "nope.js", "..%2Fmain.py", "%2E%2E%2Froutes.py"):
        response = await client.get(f"/console/{missing}")
        assert response.status_code == 404, missing
        assert response.headers["content-type"] == "application/problem+json"


def test_the_modules_render_text_only_and_load_nothing_from_elsewhere() -> None:
    for name, (body, _) in ASSETS.items():
        text = body.decode()
        assert not re.search(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", text), name
        if name.endswith(".js"):
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                         "eval(", "new Function", ".style."):  # fmt: skip
                assert sink not in text, (name, sink)
            # each module says what it owns in its first line
            assert re.match(rf"// {re.escape(name)} owns ", text), name


def test_the_routes_the_console_calls_are_in_the_api() -> None:
    """Every `/v1/...` path the modules call is a route of the OpenAPI schema."""
    from app.main import create_app

    paths = set(create_app().openapi()["paths"])
    called: set[str] = set()
    for name in MODULES:
        for template in re.findall(r"`(/v1/[^`?]*)", ASSETS[name][0].decode()):
            path = re.sub(r"/\$\{[^}]+\}", "/{}", template)  # a path segment
            called.add(re.sub(r"\$\{[^}]+\}", "", path).rstrip("/"))  # a query
    routes = {re.sub(r"\{[^}]+\}", "{}", path) for path in paths}
    assert called, "no API calls found"
    assert called <= routes, called - routes
    for needed in ("/v1/runs/{}/continue", "/v1/runs/{}/cancel", "/v1/runs/{}/events",
                   "/v1/agents/{}/versions", "/v1/sessions/{}/messages"):  # fmt: skip
        assert needed in called
