"""`GET /v1/tools`: the registered tools, by name, a page at a time."""

from __future__ import annotations

import httpx


async def test_tools_page_through_in_name_order(client: httpx.AsyncClient) -> None:
    everything = await client.get("/v1/tools")
    assert everything.status_code == 200
    body = everything.json()
    names = [tool["name"] for tool in body["data"]]
    assert body["next_cursor"] is None
    assert len(names) >= 2 and names == sorted(names)

    seen: list[str] = []
    cursor = None
    for _ in range(len(names)):
        params: dict[str, str | int] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/tools", params=params)).json()
        assert len(page["data"]) == 1
        seen += [tool["name"] for tool in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names


async def test_bad_tool_page_parameters_are_422(client: httpx.AsyncClient) -> None:
    for params in ({"limit": 0}, {"limit": 201}, {"cursor": "not-a-cursor"}, {"cursor": "WzFd"}):
        response = await client.get("/v1/tools", params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["code"] == "validation_error"
