"""Run execution: one task per run_id (manager), live event fan-out (bus)."""
