"""The corpus manifest and ``corpus fetch``: verified mirror copies, refused bad copies, downloads that changed upstream.

No test here reaches outside the machine: every URL is rewritten to a closed local port, an ``.invalid`` host
(which never resolves) or a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assistant.sources import RECEIPTS, copy_into_corpus, corpus_files, fetch_sources, read_manifest, remove_from_corpus
from tests.conftest import CEA_MD, EO14330_PDF, MANIFEST, SEED
from tests.helpers import free_port


def _write_manifest(path: Path, sources: list[dict]) -> Path:
    path.write_text(json.dumps({"sources": sources}, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def _manifest_with_urls(path: Path, url_for) -> Path:
    """The repo's manifest with every URL replaced by ``url_for(file)``."""
    sources = json.loads(MANIFEST.read_text())["sources"]
    for source in sources:
        if source.get("url"):
            source["url"] = url_for(source["file"])
    return _write_manifest(path, sources)


@pytest.fixture
def to_fetch() -> list[dict]:
    return [s for s in json.loads(MANIFEST.read_text())["sources"] if not s.get("committed")]


@pytest.fixture
def http_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``<tmp>/www``; yields (base url, directory)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # noqa: D401 - keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_manifest_lists_every_mirror_file(make_settings, corpus_mirror):
    sources = {s.file: s for s in read_manifest(make_settings())}
    on_disk = {p.name for p in corpus_mirror.iterdir() if p.name != "SOURCES.md"}
    assert on_disk <= set(sources)
    assert sources[SEED].committed and sources[SEED].language == "zh"
    for name in on_disk:
        data = (corpus_mirror / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sources[name].sha256, name
        assert len(data) == sources[name].size, name


def test_fetch_from_the_shared_mirror_copies_and_verifies(make_settings, corpus_mirror, to_fetch, tmp_path):
    manifest = _manifest_with_urls(tmp_path / "sources.json", lambda f: f"http://127.0.0.1:{free_port()}/{f}")
    settings = make_settings(corpus_mirror=corpus_mirror, corpus_manifest=manifest)
    lines: list[str] = []
    report = fetch_sources(settings, log=lines.append)
    assert sorted(report.fetched) == sorted(s["file"] for s in to_fetch)
    assert not report.missing and not report.changed and not report.present
    for source in to_fetch:
        data = (settings.fetched_dir / source["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == source["sha256"]
    assert not (settings.fetched_dir / SEED).exists()  # committed: lives in corpus/, never fetched
    assert not list(settings.fetched_dir.glob("*.part")) and not (settings.fetched_dir / RECEIPTS).exists()
    assert all("(mirror)" in line for line in lines)

    again = fetch_sources(settings, log=lambda _: None)
    assert sorted(again.present) == sorted(report.fetched) and not again.fetched and not again.missing


def test_a_corrupted_mirror_copy_is_refused_and_the_rest_fetched(make_settings, corpus_mirror, to_fetch, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for source in to_fetch:
        (mirror / source["file"]).write_bytes((corpus_mirror / source["file"]).read_bytes())
    bad = mirror / EO14330_PDF
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, different sha256
    bad.write_bytes(bytes(data))
    port = free_port()
    manifest = _manifest_with_urls(tmp_path / "sources.json", lambda f: f"http://127.0.0.1:{port}/{f}")
    settings = make_settings(corpus_mirror=mirror, corpus_manifest=manifest, fetch_timeout=2.0)

    lines: list[str] = []
    report = fetch_sources(settings, log=lines.append)
    assert [name for name, _ in report.missing] == [EO14330_PDF]
    reason = dict(report.missing)[EO14330_PDF]
    assert "mirror copy has sha256" in reason and "download failed" in reason
    assert sorted(report.fetched) == sorted(s["file"] for s in to_fetch if s["file"] != EO14330_PDF)
    assert not (settings.fetched_dir / EO14330_PDF).exists()  # bad bytes never enter the corpus
    assert any(line.startswith("MISSING") and EO14330_PDF in line for line in lines)
    assert report.as_dict()["missing"][0]["file"] == EO14330_PDF


@pytest.mark.parametrize("unreachable", ["closed-port", "invalid-host"])
def test_no_mirror_and_no_network_reports_missing_and_goes_on(make_settings, to_fetch, tmp_path, unreachable):
    port = free_port()
    url_for = (lambda f: f"http://127.0.0.1:{port}/{f}") if unreachable == "closed-port" else (
        lambda f: f"https://sources.pension-assistant.invalid/{f}")
    manifest = _manifest_with_urls(tmp_path / "sources.json", url_for)
    settings = make_settings(corpus_manifest=manifest, corpus_mirror=None, fetch_timeout=1.0)
    report = fetch_sources(settings, log=lambda _: None)
    assert sorted(name for name, _ in report.missing) == sorted(s["file"] for s in to_fetch)
    assert all("download failed" in reason for _, reason in report.missing)
    assert not report.fetched and not list(settings.fetched_dir.iterdir())


def test_a_file_missing_from_the_mirror_falls_back_to_its_url(make_settings, tmp_path, http_server):
    base, www = http_server
    body = b"# Remote page\n\nServed over HTTP.\n"
    (www / "page.md").write_bytes(body)
    manifest = _write_manifest(tmp_path / "sources.json", [dict(
        file="page.md", title="Remote page", issuer="test", date="2025-01-01", language="en",
        url=f"{base}/page.md", sha256=hashlib.sha256(body).hexdigest(), size=len(body))])
    empty_mirror = tmp_path / "empty-mirror"
    empty_mirror.mkdir()
    settings = make_settings(corpus_manifest=manifest, corpus_mirror=empty_mirror)
    lines: list[str] = []
    report = fetch_sources(settings, log=lines.append)
    assert report.fetched == ["page.md"] and not report.missing and not report.changed
    assert (settings.fetched_dir / "page.md").read_bytes() == body
    assert lines == ["ok       page.md (downloaded)"]


def test_a_download_that_differs_is_kept_with_a_warning_and_recorded(make_settings, tmp_path, http_server):
    base, www = http_server
    recorded = b"# Fact sheet\n\nThe version we recorded.\n"
    served = b"# Fact sheet\n\nThe page changed upstream since.\n"
    (www / "fact.md").write_bytes(served)
    manifest = _write_manifest(tmp_path / "sources.json", [
        dict(file="fact.md", title="Fact sheet", issuer="test", date="2025-08-07", language="en",
             url=f"{base}/fact.md", sha256=hashlib.sha256(recorded).hexdigest(), size=len(recorded)),
        dict(file="gone.md", title="Gone", issuer="test", date="2025-08-07", language="en",
             url=f"{base}/gone.md", sha256="0" * 64, size=1),
        dict(file="nowhere.md", title="No URL", issuer="test", date="2025-08-07", language="en",
             url=None, sha256="1" * 64, size=1),
    ])
    settings = make_settings(corpus_manifest=manifest)
    lines: list[str] = []
    report = fetch_sources(settings, log=lines.append)

    assert report.changed == ["fact.md"] and not report.fetched
    assert (settings.fetched_dir / "fact.md").read_bytes() == served  # kept
    warning = next(line for line in lines if "fact.md" in line)
    assert warning.startswith("WARNING") and "differ" in warning
    receipts = json.loads((settings.fetched_dir / RECEIPTS).read_text())
    assert receipts["fact.md"]["sha256"] == hashlib.sha256(served).hexdigest()
    assert receipts["fact.md"]["url"] == f"{base}/fact.md"
    missing = dict(report.missing)
    assert "404" in missing["gone.md"] and "download failed" in missing["gone.md"]
    assert missing["nowhere.md"] == "no URL to download from"

    # the recorded receipt makes the kept copy count as present next time: no download, no second warning
    (www / "fact.md").unlink()
    again = fetch_sources(settings, log=lambda _: None)
    assert again.present == ["fact.md"] and not again.changed
    # and the fetched files are part of the corpus, the receipts file is not
    assert "fact.md" in corpus_files(settings) and RECEIPTS not in corpus_files(settings)


def test_corpus_files_lists_ingestible_and_unsupported_files(make_settings, corpus_mirror):
    settings = make_settings()
    corpus = settings.corpus_dir
    (corpus / "sub").mkdir(parents=True)
    (corpus / SEED).write_bytes((corpus_mirror / SEED).read_bytes())
    (corpus / "sub" / "notes.md").write_text("# Notes\n\ntext\n", encoding="utf-8")
    (corpus / "README.md").write_text("# about this folder\n", encoding="utf-8")
    (corpus / ".hidden.txt").write_text("hidden", encoding="utf-8")
    (corpus / "half.txt.part").write_text("partial write", encoding="utf-8")
    (corpus / "sheet.xlsx").write_bytes(b"PK")
    settings.fetched_dir.mkdir()
    (settings.fetched_dir / CEA_MD).write_bytes((corpus_mirror / CEA_MD).read_bytes())
    (settings.fetched_dir / RECEIPTS).write_text("{}", encoding="utf-8")
    settings = make_settings(corpus_manifest=corpus / "sources.json")
    (corpus / "sources.json").write_text('{"sources": []}', encoding="utf-8")

    files = corpus_files(settings)
    assert set(files) == {SEED, "sub/notes.md", "sheet.xlsx", CEA_MD}
    assert files[CEA_MD] == settings.fetched_dir / CEA_MD


def test_copy_into_and_remove_from_corpus(make_settings):
    settings = make_settings()
    path = copy_into_corpus(settings, "uploads/note.txt", b"uploaded text")
    assert path.read_bytes() == b"uploaded text" and "uploads/note.txt" in corpus_files(settings)
    assert remove_from_corpus(settings, "uploads/note.txt") is True
    assert remove_from_corpus(settings, "uploads/note.txt") is False
    assert "uploads/note.txt" not in corpus_files(settings)
