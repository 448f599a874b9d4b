"""`GET /v1/tools`: the server's registered tools with their JSON Schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

router = APIRouter(prefix="/v1/tools", tags=["tools"])


class ToolInfo(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]


class ToolList(BaseModel):
    data: list[ToolInfo]


@router.get("")
async def list_tools(request: Request) -> ToolList:
    """Built-in tools and those registered from TOOL_MODULES."""
    tools = request.app.state.runtime.tools.list()
    data = []
    for tool in sorted(tools, key=lambda t: t.name):
        definition = tool.definition()
        data.append(
            ToolInfo(
                name=definition.name,
                description=definition.description,
                parameters=definition.parameters,
            )
        )
    return ToolList(data=data)
