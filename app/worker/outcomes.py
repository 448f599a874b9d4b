"""How a run's end is recorded: status, output, session history and state, the
session released, and other workers told there may be work."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.engine.events import BaseEvent, RunCancelled, RunCompleted, RunErrorEvent, utcnow_iso
from app.engine.output import RunError, RunOutput
from app.engine.state import RunState
from app.notify import Notifier
from app.tables import Run
from app.worker import store
from app.worker.bus import EventBus
from app.worker.recorder import RunRecorder
from app.worker.writer import EventWriter, Release

log = logging.getLogger("agentd.worker")

END_STATUS = {
    "RunCompleted": "completed",
    "RunError": "error",
    "RunCancelled": "cancelled",
    "RunPaused": "paused",
}
# What an event adds to the RunOutput it carries.
_EVENT_FIELDS = {"event", "seq"}


def outcome_values(state: RunState, status: str, output: RunOutput | None = None) -> dict[str, Any]:
    """The run-row columns for a run that ended or paused; `output` is the run's
    output when the caller has it already (the `RunCompleted` event carries it)."""
    now = utcnow()
    if output is None:
        output = state.to_output(updated_at=utcnow_iso())
        output.status = status  # type: ignore[assignment]
    stored = output.model_dump(mode="json", exclude=_EVENT_FIELDS)
    values: dict[str, Any] = {
        "status": status,
        "state": state.model_dump(mode="json"),
        "output": stored,
        "content": output.content,
        "content_type": output.content_type,
        "error": stored["error"],
        "metrics": stored["metrics"],
        "last_agent_id": state.last_agent_id,
        "model": state.model,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
    }
    if status != "paused":
        values["finished_at"] = now
    return values


def release(
    tenant_id: str,
    session_id: str,
    *,
    state: RunState | None = None,
    keep_history: bool = False,
) -> Release:
    """Release the session, saving the run's session state and history with it.
    (The commit also tells other workers there may be work: `wake_claimers`.)"""
    if state is None:
        return Release(tenant_id, session_id)
    messages = state.new_messages() if keep_history else []
    return Release(tenant_id, session_id, state=dict(state.session_state), messages=messages)


async def record_end(
    state: RunState, recorder: RunRecorder, event: BaseEvent | RunCompleted
) -> None:
    status = END_STATUS[event.event]
    output = event if isinstance(event, RunCompleted) else None
    await recorder.commit(
        event,
        values=outcome_values(state, status, output),
        release=release(
            recorder.tenant_id, state.session_id, state=state, keep_history=status == "completed"
        ),
        wake_claimers=True,
    )


async def record_cancel(state: RunState, recorder: RunRecorder) -> None:
    state.status = "cancelled"
    event = RunCancelled(
        run_id=state.run_id,
        session_id=state.session_id,
        agent_id=state.active_agent_id,
        reason="cancelled by request",
    )
    await record_end(state, recorder, event)


async def record_error(state: RunState, recorder: RunRecorder) -> None:
    state.status = "error"
    state.error = RunError(code="internal_error", message="The run failed unexpectedly.")
    event = RunErrorEvent(
        run_id=state.run_id,
        session_id=state.session_id,
        agent_id=state.active_agent_id,
        error=state.error,
        content=state.error.message,
    )
    await record_end(state, recorder, event)


async def _finish_stored(
    writer: EventWriter,
    bus: EventBus,
    notifier: Notifier,
    run: Run,
    event: BaseEvent,
    values: dict[str, Any],
    *,
    owner: str | None,
    statuses: tuple[str, ...] | None,
) -> None:
    channel = bus.open(run.id, run.last_seq + 1)
    recorder = RunRecorder(
        run_id=run.id,
        tenant_id=run.tenant_id,
        last_seq=run.last_seq,
        writer=writer,
        channel=channel,
        owner=owner,
        notifier=notifier,
        expect_statuses=statuses,
    )
    now = utcnow()
    values = {
        "finished_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": now,
        **values,
    }
    try:
        await recorder.commit(
            event,
            values=values,
            release=release(run.tenant_id, run.session_id),
            wake_claimers=True,
        )
    finally:
        bus.close(channel)


async def fail_unstarted(
    writer: EventWriter,
    bus: EventBus,
    notifier: Notifier,
    run: Run,
    code: str,
    message: str,
) -> None:
    """End a run that cannot start or resume (its agent is gone, its workers keep dying)."""
    error = RunError(code=code, message=message)
    event = RunErrorEvent(
        run_id=run.id,
        session_id=run.session_id,
        agent_id=run.last_agent_id or run.agent_id,
        error=error,
        content=message,
    )
    output = dict(run.output or {})
    values = {"status": "error", "error": error.model_dump()}
    if output:
        values["output"] = {**output, "status": "error", "error": error.model_dump()}
    await _finish_stored(
        writer, bus, notifier, run, event, values, owner=run.lease_owner, statuses=("running",)
    )


async def cancel_without_worker(
    writer: EventWriter,
    bus: EventBus,
    notifier: Notifier,
    run: Run,
    *,
    owner: str | None,
    statuses: tuple[str, ...] | None = None,
) -> None:
    """Record RunCancelled for a run no worker executes (queued, paused, or not yet
    started); raises LeaseLost when its status is no longer one of `statuses`."""
    event = RunCancelled(
        run_id=run.id,
        session_id=run.session_id,
        agent_id=run.last_agent_id or run.agent_id,
        reason="cancelled by request",
    )
    output = dict(run.output or {})
    values: dict[str, Any] = {"status": "cancelled"}
    if output:
        values["output"] = {**output, "status": "cancelled", "requirements": []}
    await _finish_stored(writer, bus, notifier, run, event, values, owner=owner, statuses=statuses)


async def hand_back(maker: async_sessionmaker[AsyncSession], run_id: str, owner: str) -> None:
    """Shutting down: leave the run running with an expired lease for the next worker."""
    async with maker() as session, session.begin():
        await store.update_owned(
            session, run_id, owner, {"lease_owner": None, "lease_expires_at": utcnow()}
        )
    log.info("run %s handed back", run_id)
