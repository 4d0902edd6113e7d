"""The HTTP service: chat (JSON or SSE), search, documents, an OpenAI-compatible endpoint, health, offline /docs."""
