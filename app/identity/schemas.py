"""Request and response bodies of `/v1/api-keys`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.principal import SCOPES

TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@|-]{0,63}$"
TenantId = Annotated[str, Field(pattern=TENANT_ID_PATTERN, description="The tenant's id.")]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    tenant_id: TenantId
    scopes: list[str] = Field(
        description="Any of: " + ", ".join(sorted(SCOPES)) + " (`admin`: every scope)."
    )
    user_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Bind the key to one user: it sees only that user's runs and sessions.",
    )

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes: {', '.join(unknown)}")
        return sorted(set(value))


class ApiKeyRead(BaseModel):
    id: str
    name: str
    tenant_id: str
    user_id: str | None
    scopes: list[str]
    created_at: datetime


class ApiKeyCreated(ApiKeyRead):
    key: str = Field(
        description="The key itself (`agk_...`), shown this once: only a hash is kept."
    )
