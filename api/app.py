"""The FastAPI application: ``create_app(settings)`` for tests and embedding, module-level ``app`` for uvicorn.

One Assistant per process, built at startup (the lifespan) so the embedding model is loaded once and the first
question is not the one that pays for it. Run it with ``assistant serve`` (or ``uvicorn api.app:app``).
"""

from __future__ import annotations

import importlib
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api import errors
from api.batching import BatchingEmbedder
from assistant import documents
from assistant.embed import make_embedder
from assistant.pipeline import Assistant
from assistant.settings import Settings, apply_offline_environment, get_settings

log = logging.getLogger("api")

STATIC_DIR = Path(__file__).resolve().parent / "static"
SWAGGER = "/static/swagger"

# Modules of api/routers/ that are mounted, each exposing ``router``. Adding an area is adding its name here.
ROUTERS = (
    "health",
    "chat",
    "search",
    "documents",
    "view",
    "openai_compat",
    "evaluations",
)

_PLACEHOLDER = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Research assistant</title></head>
<body><h1>Research assistant</h1><p>The chat page is not installed (api/static/index.html is missing).
The API is up: see <a href="/docs">/docs</a>, or <code>POST /chat</code>.</p></body></html>"""


def warm_up(assistant: Assistant) -> None:
    """Load the model, open the index and build the lexical index, so requests find everything ready."""
    assistant.warm_up()
    if not assistant.store.count():
        log.warning("the index at %s is empty: run `assistant index`, or POST /documents/sync",
                    assistant.settings.chroma_url or assistant.settings.index_dir)


def finish_staged_uploads(assistant: Assistant) -> None:
    """An upload whose server was killed between its commit and its move into the corpus is finished now."""
    try:
        with documents.corpus_change(assistant.settings, wait=0):
            documents.recover(assistant)
    except documents.CorpusBusy:  # a change is running: it recovers first
        pass


def create_app(settings: Settings | None = None, assistant: Assistant | None = None) -> FastAPI:
    """Build the service. ``assistant`` (optional) is used instead of building one at startup."""
    apply_offline_environment()
    settings = settings or (assistant.settings if assistant is not None else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "assistant", None) is None:
            # concurrent questions share a forward pass
            built = Assistant(settings, embedder=BatchingEmbedder(make_embedder(settings)))
            try:
                await run_in_threadpool(warm_up, built)
            except Exception as exc:
                log.error("the assistant could not start: %s", exc)  # e.g. no model, or an index of another model
                raise
            app.state.assistant = built
        await run_in_threadpool(finish_staged_uploads, app.state.assistant)
        yield

    app = FastAPI(
        title="Pension research assistant",
        version="0.1.0",
        summary="Answers questions over a bilingual (English/Chinese) corpus with verified, quoted citations.",
        lifespan=lifespan,
        docs_url=None,  # served below with local Swagger assets, so /docs works offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.assistant = assistant
    errors.install(app)

    for name in ROUTERS:
        app.include_router(importlib.import_module(f"api.routers.{name}").router)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} - API docs",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js", swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER}/favicon-32x32.png",
        )

    @app.get("/", include_in_schema=False)
    def index():
        page = STATIC_DIR / "index.html"
        if page.is_file():
            return FileResponse(page, media_type="text/html")
        return HTMLResponse(_PLACEHOLDER)

    return app


app = create_app()
