"""The OpenAI-compatible protocol: `/v1/models`, `/v1/chat/completions` and the
Responses API, as an adapter over the run service."""
