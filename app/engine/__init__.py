"""The agent loop: models, tools, handoffs, guardrails and typed events.

Nothing in this package imports FastAPI, Starlette or SQLAlchemy: the loop can
be read, tested and reused on its own. The run service drives it and stores
what it yields.
"""
