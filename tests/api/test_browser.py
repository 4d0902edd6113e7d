"""The chat page (api/static) in a real headless Chromium, against the real app over a small MiniLM index.

The app (``api.app.create_app``) runs under uvicorn in a background thread on a free 127.0.0.1 port, over a temp
corpus of the seed article (Chinese) and the White House text of EO 14330 (English), indexed first with the small
all-MiniLM-L6-v2 model. The server has an API key, so the upload also goes through the page's API-key dialog.
Playwright drives Debian's /usr/bin/chromium (never ``playwright install``); without it this test FAILS and says to
run scripts/install_browser.sh.

The screenshot is written under the pytest tmp dir and copied to build/screenshot-chat.png (and a narrow-screen one
to build/screenshot-chat-narrow.png) for a human to look at.

The citation test runs its own server over the EO 14330 PDF, the seed article and a note whose text is markup: it
opens a citation, shows it in its document (the highlighted text must equal the quote, the PDF link must carry the
quote's page, checked against the PDF itself with pypdf), steps between the quotes and pages of that document, does
the same in Chinese, and writes docs/citation-view.png, the README's screenshot.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import EO14330_PDF, MANIFEST, MINILM_ABSTAIN_THRESHOLD, REPO, SEED, WH_EO_MD, copy_into
from tests.helpers import free_port, wait_http

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
API_KEY = "browser-test-key"
QUESTION = "Within how many days must the Secretary of Labor reexamine guidance?"
OFF_TOPIC = "What is the boiling point of tungsten in kelvin?"
UPLOAD_NAME = "browser_upload_note.md"
# A front-matter title (kept verbatim by the loader) with markup and Chinese: the page must show it as text.
UPLOAD_TITLE = "Browser upload <b>test</b> <img src=x onerror=alert(1)> note 养老金测试"
UPLOAD_TEXT = f"""---
title: "{UPLOAD_TITLE}"
---
# Browser upload note

This short note was uploaded through the chat page by the browser test. It says that the fictional
Example Pension Plan lets participants rebalance their 401(k) accounts once every quarter.
"""
BUILD_DIR = REPO / "build"
DOCS_SHOT = REPO / "docs" / "citation-view.png"  # kept in the README, rewritten by every run of the citation test
PDF_QUESTION = "What does the executive order direct the Secretary of Labor to do?"  # three quotes of the PDF
ZH_QUESTION = "401(k) 计划是哪一年设立的？"
MARKUP_NOTE = "markup_note.txt"
MARKUP_TEXT = ("The Wombat Pension Trust note.\n\nThe Wombat Pension Trust pays <b>bold</b> benefits "
               "<img src=x onerror=\"document.title='pwned'\"> to retired wombat keepers every spring.\n")
TIMEOUT_MS = 120_000  # generous: 2 shared cores, model on CPU


def _require_chromium() -> None:
    if not CHROMIUM.is_file():
        pytest.fail(f"headless Chromium not found at {CHROMIUM}: run scripts/install_browser.sh "
                    "(apt-get install chromium) before the browser tests. Do not use `playwright install`.")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the package is in the project's requirements
        pytest.fail(f"the Python package playwright is not importable ({exc}); install requirements/*.txt")


def _serve(tmp_path_factory, name: str, shared_embedder, minilm_path: str, files: dict[str, Path],
           api_key: str | None, **overrides):
    """The real app (``create_app(settings)``, its own startup) on 127.0.0.1:<free port> over a freshly indexed temp
    corpus of ``files`` (name -> folder it is copied from); yields (base url, settings)."""
    _require_chromium()  # fail before spending time on the index
    import uvicorn

    from api.app import create_app
    from assistant.pipeline import Assistant
    from assistant.settings import Settings

    base = tmp_path_factory.mktemp(name)
    settings = Settings(
        corpus_dir=base / "corpus", index_dir=base / "index", model_cache=base / "models",
        embedding_model=minilm_path, embedding_dtype="float32", corpus_manifest=MANIFEST,
        corpus_mirror=None, chroma_url=None, llm_provider="none", api_key=api_key,
        # the page's handling of answers and citations is tested, not when the answer model (fit for EmbeddingGemma)
        # abstains, which with MiniLM is on most questions: quote at every confidence
        answer_threshold=0.0, extra_sentence_ratio=0.0, abstain_threshold=MINILM_ABSTAIN_THRESHOLD, **overrides,
    )
    for file_name, folder in files.items():
        copy_into(settings.corpus_dir, [file_name], folder)
    indexer = Assistant(settings, embedder=shared_embedder)  # the session's loaded model; the app loads its own
    report = indexer.sync(show_progress=False)
    assert not report.failed and len(report.added) == len(files), report

    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-browser-test", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", 180, thread=thread)
        yield url, settings
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser_server(tmp_path_factory, minilm_path: str, corpus_mirror: Path, shared_embedder):
    """The seed article and the White House text of EO 14330, behind an API key. Every answer is marked as resting
    on weak evidence (the bar at 1), so that the page's mark is shown whatever MiniLM's confidences are."""
    yield from _serve(tmp_path_factory, "browser", shared_embedder, minilm_path,
                      {SEED: REPO / "corpus", WH_EO_MD: corpus_mirror}, API_KEY, weak_evidence_below=1.0)


@pytest.fixture(scope="module")
def citation_server(tmp_path_factory, minilm_path: str, corpus_mirror: Path, shared_embedder):
    """The EO 14330 PDF, the seed article and a note whose text is markup, without an API key."""
    notes = tmp_path_factory.mktemp("notes")
    (notes / MARKUP_NOTE).write_text(MARKUP_TEXT, encoding="utf-8")
    yield from _serve(tmp_path_factory, "citations", shared_embedder, minilm_path,
                      {EO14330_PDF: corpus_mirror, SEED: REPO / "corpus", MARKUP_NOTE: notes}, None)


@pytest.fixture
def browser_page(tmp_path: Path):
    """(page, errors): a fresh Chromium page (desktop size) and the JavaScript errors and failed requests it saw.
    The last state of the page is saved as last-state.png in the test's tmp dir, to diagnose a failure."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 860}, device_scale_factor=1,
                                          locale="en-US", reduced_motion="reduce")
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
            page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}")
                    if msg.type == "error" and "Failed to load resource" not in msg.text else None)
            # Failed requests, by URL; the one 401 (upload before the API key is entered) is expected.
            page.on("response", lambda r: errors.append(f"HTTP {r.status} {r.request.method} {r.url}")
                    if r.status >= 400 and r.status != 401 else None)
            yield page, errors
        finally:
            try:
                if "page" in locals() and not page.is_closed():
                    page.screenshot(path=str(tmp_path / "last-state.png"), full_page=True)
            except Exception:  # noqa: BLE001 - best effort, only for diagnosis
                pass
            browser.close()


def _save_screenshot(page, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot))
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, BUILD_DIR / name)
    return shot


def test_chat_page_streams_cites_and_uploads(browser_server, browser_page, tmp_path: Path):
    from playwright.sync_api import expect

    url, settings = browser_server
    page, js_errors = browser_page
    started = time.monotonic()

    page.goto(f"{url}/")
    expect(page).to_have_title("Pension Research Assistant · 养老金研究助手")
    expect(page.locator("#health")).to_have_attribute("data-state", "ok")
    expect(page.locator("#health-text")).to_contain_text("passages")
    expect(page.locator("#health-text")).to_contain_text("2 documents")
    docs = page.locator("#document-list li.document")
    expect(docs).to_have_count(2)
    expect(page.locator("#document-list")).to_contain_text("Democratizing Access to Alternative Assets")
    expect(page.locator("#citation-panel")).to_be_hidden()

    # --- the page's SSE parser: frames split across reads, CRLF split between reads, comments, \u escapes ---
    parsed = page.evaluate(r"""() => {
        const out = [];
        const parser = window.pensionAssistant.createSseParser((name, data) => out.push([name, JSON.parse(data)]));
        for (const piece of ['event: token\r', '\ndata: {"text": "a"}\r\n\r\n: keep-alive\n\nevent: done\nda',
                             'ta: {"answer": "\\u517b\\u8001 [1]"}\n', '\n']) parser.push(piece);
        parser.end();
        return out;
    }""")
    assert parsed == [["token", {"text": "a"}], ["done", {"answer": "养老 [1]"}]], parsed

    # --- ask: Enter sends; the answer streams in token by token (SSE over fetch) and only ever grows ---
    page.evaluate("""() => {
        window.__answerSnapshots = [];
        new MutationObserver(() => {
            const answers = document.querySelectorAll('#messages article.assistant .answer');
            const text = answers.length ? answers[answers.length - 1].textContent : '';
            const snaps = window.__answerSnapshots;
            if (text && snaps[snaps.length - 1] !== text) snaps.push(text);
        }).observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true});
    }""")
    box = page.locator("#message-input")
    box.fill(QUESTION)
    box.press("Enter")
    expect(page.locator("#messages article.user")).to_have_count(1)
    expect(page.locator("#messages article.user .bubble")).to_have_text(QUESTION)
    answer = page.locator("#messages article.assistant").last
    send = page.locator("#send-button")
    saw_busy = send.is_disabled()  # usually still streaming here; not asserted (a fast answer may already be done)
    expect(answer).to_have_attribute("data-state", "done", timeout=TIMEOUT_MS)
    expect(send).to_be_enabled()
    answer_text = answer.locator(".answer").inner_text()
    assert "180" in answer_text, answer_text
    tokens = int(answer.get_attribute("data-tokens"))
    assert tokens > 1, f"the answer should arrive as many `token` events, got {tokens}"
    snapshots = page.evaluate("window.__answerSnapshots")
    assert snapshots and "180" in snapshots[-1]
    assert all(len(a) <= len(b) for a, b in zip(snapshots, snapshots[1:])), f"the streamed text should only grow: {snapshots}"
    expect(answer.locator(".badge.not-grounded")).to_be_hidden()
    # --- weak evidence: the mark and its note, with the confidence /chat gives for the same question ---
    plain = page.request.post(f"{url}/chat", data={"message": QUESTION, "history": []}).json()
    assert plain["grounded"] and plain["weak_evidence"] is True, plain
    weak = answer.locator(".badge.weak-evidence")
    expect(weak).to_be_visible()
    expect(weak).to_contain_text(f"Weak evidence {int(plain['confidence'] * 100 + 0.5)}%")  # as Math.round
    expect(answer.locator(".weak-note")).to_be_visible()
    expect(answer.locator(".weak-note")).to_contain_text("may not answer this exact question")
    conversation_id = page.evaluate("window.pensionAssistant.state.conversationId")
    assert conversation_id, "the conversation id from the stream should be kept for follow-ups"

    # --- citation markers are buttons; one opens the panel with quote, title, document id ---
    cites = answer.locator(".answer button.cite")
    assert cites.count() >= 1
    first = cites.first
    marker = first.get_attribute("data-marker")
    first.click()
    panel = page.locator("#citation-panel")
    expect(panel).to_be_visible()
    expect(first).to_have_attribute("aria-expanded", "true")
    quote = panel.locator(".quote").inner_text().strip()
    title = page.locator("#citation-title").inner_text().strip()
    document_id = page.locator("#citation-document").inner_text().strip()
    assert quote and title and document_id, (quote, title, document_id)
    assert document_id == WH_EO_MD, document_id
    assert "Democratizing Access to Alternative Assets" in title
    expect(page.locator("#citation-marker")).to_have_text(f"[{marker}]")
    assert "180 days" in " ".join(quote.split()), quote  # marker 1 quotes the sentence the answer comes from
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    # --- upload: the server has an API key, so the first try asks for it; then the document is listed ---
    page.set_input_files("#upload-input", files=[{"name": UPLOAD_NAME, "mimeType": "text/markdown",
                                                  "buffer": UPLOAD_TEXT.encode("utf-8")}])
    page.click("#upload-button")
    dialog = page.locator("#api-key-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#upload-status")).to_have_attribute("data-kind", "error")
    page.fill("#api-key-input", API_KEY)
    page.click("#api-key-save")
    expect(dialog).to_be_hidden()
    assert page.evaluate("localStorage.getItem('pensionAssistant.apiKey')") == API_KEY
    page.click("#upload-button")  # the file is still selected
    status = page.locator("#upload-status")
    expect(status).to_have_attribute("data-kind", "success", timeout=TIMEOUT_MS)
    expect(status).to_contain_text("Indexed")
    expect(docs).to_have_count(3)
    uploaded = page.locator("#document-list li.document", has_text=UPLOAD_NAME)
    expect(uploaded).to_have_count(1)
    expect(uploaded.locator(".doc-title")).to_have_text(UPLOAD_TITLE)  # shown as text, with the Chinese intact
    assert page.locator("#document-list b, #document-list img").count() == 0, "titles must never be parsed as HTML"
    expect(page.locator("#health-text")).to_contain_text("3 documents")
    assert (settings.corpus_dir / UPLOAD_NAME).is_file()

    # --- the screenshot a human looks at: conversation, open citation, documents with the upload ---
    first.click()
    expect(panel).to_be_visible()
    shot = _save_screenshot(page, tmp_path, "screenshot-chat.png")
    assert shot.stat().st_size > 10_000

    # --- a follow-up in the same conversation that the sources cannot answer: "not in sources" badge ---
    page.keyboard.press("Escape")
    box.fill(OFF_TOPIC)
    page.click("#send-button")
    off_topic = page.locator("#messages article.assistant").nth(1)
    expect(off_topic).to_have_attribute("data-state", "done", timeout=TIMEOUT_MS)
    expect(off_topic.locator(".badge.not-grounded")).to_be_visible()
    expect(off_topic.locator(".badge.weak-evidence")).to_be_hidden()  # a refusal is no answer on weak evidence
    expect(off_topic.locator(".weak-note")).to_be_hidden()
    assert off_topic.locator("button.cite").count() == 0
    assert page.evaluate("window.pensionAssistant.state.conversationId") == conversation_id

    # --- delete the upload through its button (confirm() accepted), with the id URL-encoded ---
    page.once("dialog", lambda d: d.accept())
    uploaded.locator("button.delete-document").click()
    expect(page.locator("#documents-status")).to_contain_text("Deleted", timeout=TIMEOUT_MS)
    expect(docs).to_have_count(2)
    assert not (settings.corpus_dir / UPLOAD_NAME).exists()

    # --- new conversation forgets the id and clears the view; Shift+Enter is a newline, not a send ---
    page.click("#new-conversation")
    expect(page.locator("#messages article")).to_have_count(0)
    assert page.evaluate("window.pensionAssistant.state.conversationId") is None
    box.fill("first line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"
    expect(page.locator("#messages article")).to_have_count(0)

    # --- narrow screen: everything stacks; saved for a human too ---
    page.set_viewport_size({"width": 390, "height": 844})
    box.fill("")
    expect(page.locator("#documents-link")).to_be_visible()
    _save_screenshot(page, tmp_path, "screenshot-chat-narrow.png")

    assert not js_errors, js_errors
    print(f"\nbrowser flow {time.monotonic() - started:.1f} s; {tokens} token events, {len(snapshots)} renders "
          f"(send disabled while streaming: {saw_busy}); screenshot {BUILD_DIR / 'screenshot-chat.png'}")


def _normalized(text: str) -> str:
    return " ".join(text.split())


def _marked_text(page) -> str:
    """The text of the highlighted (current) quote in the document view, exactly as in the DOM."""
    return page.evaluate("""() => [...document.querySelectorAll('#view-text mark.current')]
                                   .map((m) => m.textContent).join('')""")


def _ask(page, question: str):
    from playwright.sync_api import expect

    box = page.locator("#message-input")
    box.fill(question)
    box.press("Enter")
    answer = page.locator("#messages article.assistant").last
    expect(answer).to_have_attribute("data-state", "done", timeout=TIMEOUT_MS)
    return answer


def _show_in_document(page):
    from playwright.sync_api import expect

    page.click("#citation-show")
    expect(page.locator("#document-view")).to_be_visible()
    expect(page.locator("#document-view")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#view-text mark.current").first).to_be_visible()


def _in_view(page, selector: str) -> bool:
    """Whether the first match lies inside the scrolled #view-text box (scrolled into view)."""
    return page.evaluate("""(selector) => {
        const box = document.getElementById('view-text').getBoundingClientRect();
        const r = document.querySelector(selector).getBoundingClientRect();
        return r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    }""", selector)


def test_citation_shows_the_quote_in_its_document(citation_server, browser_page, tmp_path: Path):
    import json

    from playwright.sync_api import expect
    from pypdf import PdfReader

    url, settings = citation_server
    page, js_errors = browser_page
    manifest = {s["file"]: s["url"] for s in json.loads(MANIFEST.read_text())["sources"]}
    pdf_pages = [_normalized(p.extract_text() or "") for p in PdfReader(settings.corpus_dir / EO14330_PDF).pages]
    page.goto(f"{url}/")
    expect(page.locator("#health")).to_have_attribute("data-state", "ok")

    # --- an English answer quoting the PDF several times; open the first source ---
    answer = _ask(page, PDF_QUESTION)
    sources = answer.locator(".sources button.source-link")
    assert sources.count() >= 2, answer.inner_text()
    sources.nth(1).click()  # [2]: a quote in the middle of the order, with text on both sides
    panel = page.locator("#citation-panel")
    expect(panel).to_be_visible()
    assert page.locator("#citation-document").inner_text().strip() == EO14330_PDF
    quote = page.locator("#citation-quote").text_content()
    page_number = int(page.locator("#citation-page").inner_text())
    file_link = page.locator("#citation-file")
    expect(file_link).to_be_visible()
    assert file_link.get_attribute("href").endswith(f"/documents/{EO14330_PDF}/file#page={page_number}")
    assert page.locator("#citation-url").get_attribute("href") == manifest[EO14330_PDF]
    # the page the link opens really holds the quote (its first words, as pypdf reads that page)
    opening = " ".join(_normalized(quote).split()[:6])
    assert opening in pdf_pages[page_number - 1], (page_number, opening)

    # --- show in document: the highlight is exactly the quote, scrolled into view, with text around it ---
    _show_in_document(page)
    assert _marked_text(page) == quote
    assert _in_view(page, "#view-text mark.current")
    context = page.locator("#view-text").text_content()
    assert len(context) > len(quote) + 500 and quote in context
    pages = re.search(r"pages? (\d+)(?:–(\d+))?", page.locator("#view-location").inner_text())
    assert int(pages.group(1)) <= page_number <= int(pages.group(2) or pages.group(1)), pages.group(0)
    total = sources.count()
    expect(page.locator("#view-quote-count")).to_contain_text(f" of {total}")
    first_index = int(re.search(r"Quote (\d+) of", page.locator("#view-quote-count").inner_text()).group(1))
    assert page.locator("#view-text mark").count() >= 1
    DOCS_SHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_SHOT))
    assert DOCS_SHOT.stat().st_size > 10_000

    # --- step through the other quotes of the document (in text order): panel and highlight follow ---
    seen = {quote}
    for step in range(1, total):
        page.click("#view-next-quote")
        index = (first_index - 1 + step) % total + 1
        expect(page.locator("#view-quote-count")).to_contain_text(f"Quote {index} of {total}")
        expect(page.locator("#document-view")).to_have_attribute("aria-busy", "false")
        quote_n = page.locator("#citation-quote").text_content()
        assert quote_n not in seen
        seen.add(quote_n)
        expect(page.locator("#view-text mark.current").first).to_be_visible()
        assert _marked_text(page) == quote_n
        assert _in_view(page, "#view-text mark.current")
        page_n = int(page.locator("#citation-page").inner_text())
        assert file_link.get_attribute("href").endswith(f"#page={page_n}")
        assert " ".join(_normalized(quote_n).split()[:6]) in pdf_pages[page_n - 1]
    page.click("#view-next-quote")  # round to the first one again
    expect(page.locator("#view-quote-count")).to_contain_text(f"Quote {first_index} of {total}")
    assert _marked_text(page) == quote

    # --- paging: later text, then back ---
    location = page.locator("#view-location").inner_text()
    later = page.locator("#view-later")
    if later.is_enabled():
        later.click()
        expect(page.locator("#view-location")).not_to_have_text(location)
        expect(page.locator("#view-earlier")).to_be_enabled()
        page.click("#view-earlier")
        expect(page.locator("#document-view")).to_have_attribute("aria-busy", "false")
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()

    # --- Chinese: the same in the seed article, no page, the stored text file linked ---
    answer_zh = _ask(page, ZH_QUESTION)
    answer_zh.locator(".answer button.cite").first.click()
    expect(panel).to_be_visible()
    assert page.locator("#citation-document").inner_text().strip() == SEED
    quote_zh = page.locator("#citation-quote").text_content()
    assert file_link.get_attribute("href").endswith(f"/documents/{SEED}/file")
    _show_in_document(page)
    assert _marked_text(page) == quote_zh
    assert page.locator("#view-text").get_attribute("lang") == "zh-Hans"
    page.keyboard.press("Escape")

    # --- a document whose text is markup: shown as text, never parsed as HTML ---
    answer_note = _ask(page, "What does the Wombat Pension Trust pay to retired wombat keepers?")
    answer_note.locator(".answer button.cite").first.click()
    _show_in_document(page)
    shown = page.locator("#view-text").text_content()
    assert "<b>bold</b>" in shown and "<img src=x" in shown
    assert page.locator("#view-text b, #view-text img").count() == 0
    assert page.title() != "pwned"
    assert not js_errors, js_errors
