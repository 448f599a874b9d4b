"""The engine's two exceptions: bad input from the caller, and a run that fails."""

from __future__ import annotations

# What a client reads when the engine or a user's hook failed: the details go to the log.
INTERNAL_ERROR_MESSAGE = "An internal error occurred while running the agent."


class InputError(ValueError):
    """The caller's input (run input, images, overrides, decisions) is invalid.

    `errors` lists every problem found, each a short sentence naming the field.
    The HTTP layer answers 422 with them.
    """

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class RunFailure(Exception):
    """A run-time failure with a stable code (API.md); the loop turns it into `RunError`."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
