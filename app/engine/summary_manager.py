"""The session summary work of a run: after the answer (and the memory update),
the summary model rewrites the session's summary, framed by
`SessionSummaryStarted` / `SessionSummaryCompleted`. Storing it replaces the
previous one, so a run resumed after a crash may simply do it again. A failed
call is logged and said in `SessionSummaryCompleted.error`; the run completes."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable

from app.engine.auxiliary import ask, work_failed
from app.engine.context import Checkpoint, RunScope, auxiliary_model
from app.engine.errors import RunFailure
from app.engine.events import RunEvent, SessionSummaryCompleted, SessionSummaryStarted
from app.engine.models.base import ModelClient, ModelProviderError
from app.engine.spec import AgentSpec
from app.engine.state import RunState
from app.engine.summary import SessionSummary, SummaryStore, parse_summary, summary_request


class SummaryManager:
    """Rewrites sessions' summaries through `store` (None: summaries are off)."""

    def __init__(self, store: SummaryStore | None, client: Callable[[str], ModelClient]) -> None:
        self.store = store
        self.client = client

    def updates_after(self, spec: AgentSpec, state: RunState) -> bool:
        return spec.session_summary.enabled and not state.summary_updated and self.store is not None

    async def update(self, scope: RunScope) -> AsyncGenerator[RunEvent | Checkpoint, None]:
        state = scope.state
        if not state.summary_started:
            state.summary_started = True
            yield scope.checkpoint()
            yield scope.event(SessionSummaryStarted)
        try:
            summary = await self._rewrite(scope)
        except (ModelProviderError, RunFailure) as exc:
            error = work_failed(state, "session summary", exc)
            state.summary_updated = True
            yield scope.checkpoint()
            yield scope.event(
                SessionSummaryCompleted, session_summary=state.session_summary, error=error
            )
            return
        state.session_summary, state.summary_updated = summary, True
        yield scope.checkpoint()
        yield scope.event(SessionSummaryCompleted, session_summary=summary)

    async def _rewrite(self, scope: RunScope) -> SessionSummary:
        """The summary model's new summary, stored; raises ModelProviderError."""
        state, spec = scope.state, scope.spec
        assert self.store is not None
        try:
            provider, name, settings = auxiliary_model(spec.session_summary.model, spec, state)
            client = self.client(provider)
        except (KeyError, ValueError):
            raise RunFailure("user_error", "no model provider for the summary model") from None
        request = summary_request(name, settings, state.session_summary, state.new_messages())
        answer = await ask(state, client, request, f"{provider}:{name}")
        return await self.store.save_summary(state.session_id, parse_summary(answer.text))
