"""The agentd benchmark harness: a near-free fake Chat Completions server, a
low-cost load generator, a bare FastAPI "floor" to compare against, and a
report of agentd (SQLite and PostgreSQL) as multiples of that floor.

Run it with `python -m bench` (`--quick` for a smoke pass); see bench/README.md.
"""
