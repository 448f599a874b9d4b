"""`GET /v1/tools`: the server's registered tools with their JSON Schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from app.pagination import CursorQuery, LimitQuery, Page, decode_cursor, encode_cursor
from app.routing import StrictJSONRoute

router = APIRouter(prefix="/v1/tools", tags=["tools"], route_class=StrictJSONRoute)


class ToolInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]


@router.get("")
async def list_tools(
    request: Request, limit: LimitQuery = 100, cursor: CursorQuery = None
) -> Page[ToolInfo]:
    """Built-in tools and those registered from TOOL_MODULES, by name."""
    after = decode_cursor(cursor, str)[0] if cursor else None
    tools = sorted(request.app.state.runtime.tools.list(), key=lambda tool: tool.name)
    if after is not None:
        tools = [tool for tool in tools if tool.name > after]
    page, more = tools[:limit], len(tools) > limit
    data = []
    for tool in page:
        definition = tool.definition()
        data.append(
            ToolInfo(
                name=definition.name,
                description=definition.description,
                parameters=definition.parameters,
            )
        )
    next_cursor = encode_cursor([page[-1].name]) if more else None
    return Page(data=data, next_cursor=next_cursor)
