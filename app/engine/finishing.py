"""The end of a run: the answer settled, then the work after it.

`final_output` takes the main model's last answer through the output model,
the parser model or structured output (with its retries), the post-hooks and
the output guardrails. When memories or the session's summary are to be
updated, the settled answer is checkpointed and announced
(`RunContentCompleted`) and `after_run` does that work before `RunCompleted`;
a run resumed after a crash takes it up from the state alone.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from functools import partial
from typing import Any

from app.engine import jsontext
from app.engine.answer_models import parse_answer, write_answer
from app.engine.auxiliary import Answer
from app.engine.context import RunScope, effective_output_schema
from app.engine.errors import RunFailure
from app.engine.events import GuardrailTripped, RunCompleted, RunContentCompleted
from app.engine.hooks import HookRegistry, run_hooks
from app.engine.memory_manager import MemoryManager
from app.engine.models.base import ModelClient
from app.engine.steps import NextStepAfterRun, NextStepFinalOutput, NextStepRunAgain, Phase
from app.engine.structured import OutputValidationError, content_type, parse_output
from app.engine.summary_manager import SummaryManager

OutputGuardrails = Callable[[RunScope, str], AsyncGenerator[GuardrailTripped, None]]


class Finisher:
    def __init__(
        self,
        *,
        client: Callable[[str], ModelClient],
        hooks: HookRegistry,
        memory: MemoryManager,
        summary: SummaryManager,
        guardrails: OutputGuardrails,
        max_output_retries: int,
    ) -> None:
        self.client = client
        self.hooks = hooks
        self.memory = memory
        self.summary = summary
        self.guardrails = guardrails
        self.max_output_retries = max_output_retries

    async def final_output(self, scope: RunScope, step: NextStepFinalOutput) -> Phase:
        state, spec = scope.state, scope.spec
        text = step.message.get("content") or ""
        schema = effective_output_schema(spec, state)
        content: Any = text
        kind = "str"
        if spec.output_model is not None:
            written = Answer()
            events = write_answer(scope, self.client, schema, written)
            async with aclosing(events) as items:
                async for item in items:
                    yield item
            # The answer the user got is the one the session's history keeps.
            content = text = step.message["content"] = written.text
        if schema is not None and spec.parser_model is not None:
            parsed: list[Any] = []
            events = parse_answer(scope, self.client, schema, text, parsed)
            async with aclosing(events) as items:
                async for item in items:
                    yield item
            content, kind = parsed[0], content_type(schema)
        elif schema is not None:
            try:
                content, kind = parse_output(text, schema), content_type(schema)
            except OutputValidationError as exc:
                if state.output_retries >= self.max_output_retries:
                    attempts = state.output_retries + 1
                    message = f"No valid structured output after {attempts} attempt(s): {exc}"
                    raise RunFailure("model_behavior_error", message) from None
                state.output_retries += 1
                state.messages.append({"role": "user", "content": _retry_prompt(exc)})
                yield scope.checkpoint()
                yield NextStepRunAgain()
                return
        if scope.spec.post_hooks:
            final = [content]
            hooks = run_hooks(
                scope,
                "post",
                scope.spec.post_hooks,
                content,
                self.hooks,
                partial(_replace_output, final, step.message),
            )
            async with aclosing(hooks) as hooked:
                async for event in hooked:
                    yield event
            content = final[0]
            text = content if isinstance(content, str) else jsontext.dumps(content).decode()
        guard = self.guardrails(scope, text)
        async with aclosing(guard) as items:
            async for item in items:
                yield item
        state.content, state.content_type = content, kind
        if self.works_after(scope):
            state.answered = True
            yield scope.checkpoint()
            yield scope.event(RunContentCompleted, content=content, content_type=kind)
            yield NextStepAfterRun()
            return
        state.status = "completed"
        yield scope.checkpoint(final=True)
        yield scope.event(RunContentCompleted, content=content, content_type=kind)
        yield state.to_output(cls=RunCompleted)

    def works_after(self, scope: RunScope) -> bool:
        """The run has work after its answer (memories, the session's summary)."""
        spec, state = scope.spec, scope.state
        return self.memory.updates_after(spec, state) or self.summary.updates_after(spec, state)

    async def after_run(self, scope: RunScope) -> Phase:
        """The work after the answer, part of the run: the memory update, then the
        session's summary."""
        state = scope.state
        if self.memory.updates_after(scope.spec, state):
            async with aclosing(self.memory.update(scope)) as items:
                async for item in items:
                    yield item
        if self.summary.updates_after(scope.spec, state):
            async with aclosing(self.summary.update(scope)) as items:
                async for item in items:
                    yield item
        state.status = "completed"
        yield scope.checkpoint(final=True)
        yield state.to_output(cls=RunCompleted)


def _replace_output(final: list[Any], message: dict[str, Any], value: Any) -> None:
    """A post-hook's replacement of the output: the answer the run stores and, for
    text, the assistant message the session's history keeps."""
    final[0] = value
    if isinstance(value, str):
        message["content"] = value


def _retry_prompt(error: OutputValidationError) -> str:
    return (
        f"Your answer does not match the required output schema: {error}. "
        "Answer again with only a JSON object that matches the schema."
    )
