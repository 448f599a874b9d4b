"""`/v1/api-keys`: stored keys, managed by the operator (every tenant's) and by
a tenant's admins (their tenant's). A key is shown once, when created; a
deleted key stops working on every replica within a second."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app import principal
from app.db import utcnow
from app.deps import NotifierDep, SessionDep
from app.errors import ApiKeyNotFound, Forbidden, problems
from app.identity import repository
from app.identity.keys import hash_key, new_key
from app.identity.schemas import TENANT_ID_PATTERN, ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from app.ids import new_id
from app.notify import Notifier
from app.pagination import INVALID_PAGE, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from app.principal import ADMIN
from app.routing import StrictJSONRoute
from app.tables import ApiKey

router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"], route_class=StrictJSONRoute)

KeyIdPath = Annotated[str, Path(max_length=40, description="The key's id.")]
NOT_FOUND = problems({404: "No such key (`api_key_not_found`)."})
FORBIDDEN = problems({403: "Not an admin, or another tenant's key (`forbidden`)."})


def _read(key: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(
        id=key.id,
        name=key.name,
        tenant_id=key.tenant_id,
        user_id=key.user_id,
        scopes=list(key.scopes),
        created_at=key.created_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={**FORBIDDEN, **problems({422: "Invalid body (`validation_error`)."})},
)
async def create_api_key(
    body: ApiKeyCreate, session: SessionDep, notifier: NotifierDep
) -> ApiKeyCreated:
    """Store a key for a tenant (and maybe one user of it). The answer's `key` is
    the only time the key is shown."""
    who = principal.require(ADMIN)
    if not who.is_admin and body.tenant_id != who.tenant_id:
        raise Forbidden("A tenant's admin creates keys of its own tenant only.")
    key = new_key()
    stored = ApiKey(
        id=new_id(),
        tenant_id=body.tenant_id,
        name=body.name,
        user_id=body.user_id,
        scopes=body.scopes,
        key_hash=hash_key(key),
        created_at=utcnow(),
    )
    session.add(stored)
    await session.flush()
    await _tell_everywhere(session, notifier, "")
    return ApiKeyCreated(**_read(stored).model_dump(), key=key)


@router.get("", responses=INVALID_PAGE)
async def list_api_keys(
    session: SessionDep,
    tenant_id: Annotated[str | None, Query(pattern=TENANT_ID_PATTERN)] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ApiKeyRead]:
    """The keys this principal manages, oldest first, without the keys themselves."""
    after = decode_cursor(cursor, str)[0] if cursor else None
    rows, next_cursor = page_of(
        await repository.list_page(session, limit=limit + 1, after=after, tenant_id=tenant_id),
        limit,
        lambda row: [row.id],
    )
    return Page(data=[_read(row) for row in rows], next_cursor=next_cursor)


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_api_key(session: SessionDep, notifier: NotifierDep, key_id: KeyIdPath) -> Response:
    """Revoke a key: every replica refuses it within a second."""
    stored = await repository.get(session, key_id)
    if stored is None:
        raise ApiKeyNotFound(f"No API key {key_id!r}.")
    await repository.delete_key(session, key_id)
    await _tell_everywhere(session, notifier, stored.key_hash)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _tell_everywhere(session: AsyncSession, notifier: Notifier, payload: str) -> None:
    """Every replica hears of the change when the transaction commits; this one
    again after the commit, so no lookup racing the change caches the old."""
    await notifier.control(session, "api_key", payload)
    await session.commit()
    notifier.dispatch_local("api_key", payload)
