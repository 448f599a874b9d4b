"""What run streams rely on sse-starlette for: learning that uvicorn is shutting down.

sse-starlette wraps uvicorn's signal handler (`Server.handle_exit`) when it is
imported and sets its public `AppStatus.should_exit`; `app.runs.sse` ends its
streams on it. A release of either library that stops doing so fails here."""

from __future__ import annotations

import signal

import uvicorn
from sse_starlette.sse import AppStatus

from app.runs.sse import server_stopping


def test_uvicorns_signal_handler_tells_the_streams_the_server_is_stopping() -> None:
    server = uvicorn.Server(uvicorn.Config(app=lambda: None))
    assert not server_stopping()
    try:
        server.handle_exit(signal.SIGTERM, None)
        assert server.should_exit  # uvicorn's own handling still runs
        assert AppStatus.should_exit
        assert server_stopping()
    finally:
        AppStatus.should_exit = False
