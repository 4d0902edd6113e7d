"""The corpus over HTTP: list, upload (searchable at once), duplicates, unreadable files, delete, sync, API key,
and readers that never see a half-applied update while the corpus changes under them."""

from __future__ import annotations

import threading
import time

import pytest

from assistant.documents import safe_name
from assistant.split import passage_id
from tests.conftest import FACT_SHEET_MD, SEED
from tests.helpers import corpus_held

NOTE = ("Quokka pension note\n\nThe Quokka Retirement Fund of Rottnest Island invests forty percent of its assets in "
        "eucalyptus futures. Its trustees meet every full moon to review the quokka portfolio.\n")


@pytest.fixture(scope="module")
def docs(make_client, fresh_assistant):
    return make_client(fresh_assistant)


@pytest.fixture(scope="module")
def keyed(make_client, fresh_assistant):
    return make_client(fresh_assistant, api_key="s3cret")


def _upload(client, name, data, **kwargs):
    return client.post("/documents", files={"file": (name, data)}, **kwargs)


def _documents(client) -> dict:
    return {d["id"]: d for d in client.get("/documents").json()["documents"]}


def test_list_documents(docs, fresh_assistant):
    body = docs.get("/documents").json()
    assert body["revision"] == fresh_assistant.store.revision()
    [doc] = body["documents"]
    assert doc["id"] == FACT_SHEET_MD and doc["language"] == "en" and doc["passages"] > 0
    assert {"id", "title", "language", "passages", "content_hash", "indexed_at"} <= set(doc)
    assert doc["indexed_at"].endswith("+00:00")


def test_upload_is_searchable_at_once_then_delete(docs, fresh_assistant):
    before = fresh_assistant.store.revision()
    response = _upload(docs, "quokka-note.txt", NOTE.encode())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "added" and body["document"]["id"] == "quokka-note.txt"
    assert body["sync"]["added"] == ["quokka-note.txt"] and not body["sync"]["partial"]
    assert body["sync"]["revision"] != before
    hits = docs.post("/search", json={"query": "quokka eucalyptus futures", "k": 1}).json()["results"]
    assert hits[0]["document"] == "quokka-note.txt"
    answer = docs.post("/chat", json={"message": "What does the Quokka Retirement Fund invest in?", "history": []})
    assert "quokka-note.txt" in {c["document"] for c in answer.json()["citations"]}

    again = _upload(docs, "other-name.txt", NOTE.encode())  # same bytes, another name: refused, no duplicate
    assert again.status_code == 409 and again.json()["error"]["type"] == "duplicate"
    assert "quokka-note.txt" in again.json()["error"]["message"]
    same = _upload(docs, "quokka-note.txt", NOTE.encode())  # same bytes, same name: nothing to do
    assert same.status_code == 200 and same.json()["status"] == "unchanged"
    assert not (fresh_assistant.settings.corpus_dir / "other-name.txt").exists()

    deleted = docs.delete("/documents/quokka-note.txt")
    assert deleted.status_code == 200 and deleted.json()["sync"]["removed"] == ["quokka-note.txt"]
    assert "quokka-note.txt" not in _documents(docs)
    assert not (fresh_assistant.settings.corpus_dir / "quokka-note.txt").exists()
    hits = docs.post("/search", json={"query": "quokka eucalyptus futures", "k": 5}).json()["results"]
    assert "quokka-note.txt" not in {h["document"] for h in hits}
    assert docs.delete("/documents/quokka-note.txt").status_code == 404


def test_upload_with_path_in_name_is_stored_under_a_safe_name(docs, fresh_assistant):
    response = _upload(docs, "some/dir/My Notes (v2).md", b"# Pension notes\n\nA note about vesting schedules.\n")
    assert response.status_code == 201, response.text
    assert response.json()["document"]["id"] == "My_Notes_v2.md"
    assert (fresh_assistant.settings.corpus_dir / "My_Notes_v2.md").is_file()
    assert docs.delete("/documents/My_Notes_v2.md").status_code == 200


@pytest.mark.parametrize("name, expected", [
    ("report.PDF", "report.pdf"), ("C:\\Users\\x\\a b.txt", "a_b.txt"), (".hidden.md", "hidden.md"),
    ("养老金 报告.md", "养老金_报告.md"), ("README.md", "upload_README.md"), ("", "upload"),
])
def test_safe_name(name, expected):
    assert safe_name(name) == expected


def test_dotdot_is_refused(docs):
    response = _upload(docs, "../../etc/evil.txt", b"text")
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_filename"


def test_unsupported_type_is_415(docs, fresh_assistant):
    response = _upload(docs, "tool.exe", b"MZ\x90\x00")
    assert response.status_code == 415 and response.json()["error"]["type"] == "unsupported_file_type"
    assert not (fresh_assistant.settings.corpus_dir / "tool.exe").exists()


def test_unreadable_file_is_422_and_not_kept(docs, fresh_assistant):
    response = _upload(docs, "broken.pdf", b"%PDF-1.4 this is not really a pdf")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "unreadable_document" and "broken.pdf" in error["message"] and error["reason"]
    assert not (fresh_assistant.settings.corpus_dir / "broken.pdf").exists()
    assert "broken.pdf" not in _documents(docs)
    assert docs.post("/documents/sync").json()["failed"] == []  # nothing left behind to fail again


def test_unreadable_new_version_keeps_the_old_one(docs, fresh_assistant):
    good = b"Wombat annuity memo.\n\nThe Wombat Annuity Trust pays its members in burrow credits.\n"
    assert _upload(docs, "wombat.txt", good).status_code == 201
    response = _upload(docs, "wombat.txt", b"Wombat \xff\xfe not UTF-8")
    assert response.status_code == 422 and "UTF-8" in response.json()["error"]["reason"]
    assert (fresh_assistant.settings.corpus_dir / "wombat.txt").read_bytes() == good
    hits = docs.post("/search", json={"query": "Wombat Annuity Trust burrow credits", "k": 1}).json()["results"]
    assert hits[0]["document"] == "wombat.txt"
    assert docs.delete("/documents/wombat.txt").status_code == 200


def test_upload_size_limit(make_client, fresh_assistant):
    small = make_client(fresh_assistant, max_upload_bytes=100)
    response = _upload(small, "big.txt", b"pension " * 50)
    assert response.status_code == 413 and response.json()["error"]["type"] == "payload_too_large"
    assert not (fresh_assistant.settings.corpus_dir / "big.txt").exists()


def test_sync_endpoint(docs, fresh_assistant):
    body = docs.post("/documents/sync").json()
    assert body["unchanged"] == [FACT_SHEET_MD] and body["added"] == [] and body["partial"] is False


def test_api_key_guards_corpus_changes(keyed):
    assert _upload(keyed, "k.txt", b"key test").status_code == 401
    wrong = keyed.post("/documents/sync", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "unauthorized"
    assert keyed.delete("/documents/" + FACT_SHEET_MD).status_code == 401
    assert keyed.post("/documents/sync", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert keyed.post("/documents/sync", headers={"X-API-Key": "s3cret"}).status_code == 200
    # reading and asking need no key
    assert keyed.get("/documents").status_code == 200
    assert keyed.post("/search", json={"query": "401(k)"}).status_code == 200


def test_readers_see_whole_versions_while_the_corpus_changes(docs, fresh_assistant):
    """Hammer /search from a thread while a document is added, replaced by a new version and deleted."""
    name = "zebra-fund.txt"
    versions = {
        "alpha": "Zebra fund report.\n\n" + "The Zebra pension fund alpha edition holds striped bonds. " * 40,
        "beta": "Zebra fund report.\n\n" + "The Zebra pension fund beta edition holds savanna equities. " * 40,
    }
    from assistant.load import content_hash
    from assistant.schema import Document
    from assistant.sync import ingest_signature

    def version(text: str) -> str:
        return Document(doc_id=name, title="", language="en", text="", content_hash=content_hash(text.encode()),
                        ingest=ingest_signature(fresh_assistant.settings)).version

    digests = {passage_id(name, version(text), 0).split("-")[0]: tag for tag, text in versions.items()}
    problems, seen, searches = [], set(), [0]
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            response = docs.post("/search", json={"query": "Zebra pension fund edition", "k": 8})
            searches[0] += 1
            if response.status_code != 200:
                problems.append(f"status {response.status_code}: {response.text[:200]}")
                continue
            tags = set()
            for hit in response.json()["results"]:
                if hit["document"] != name:
                    continue
                tag = digests.get(hit["chunk_id"].split("-")[0])
                other = {"alpha": "beta", "beta": "alpha"}.get(tag)
                if tag is None or other in hit["text"]:
                    problems.append(f"passage {hit['chunk_id']} of no committed version: {hit['text'][:80]}")
                tags.add(tag)
            if len(tags) > 1:
                problems.append(f"mixed versions in one answer: {tags}")
            seen.update(tags)

    def wait_until_seen(tag):
        deadline = time.monotonic() + 30
        while tag not in seen and not problems and time.monotonic() < deadline:
            time.sleep(0.05)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        assert _upload(docs, name, versions["alpha"].encode()).status_code == 201
        wait_until_seen("alpha")
        assert _upload(docs, name, versions["beta"].encode()).json()["status"] == "updated"
        wait_until_seen("beta")
        assert docs.delete(f"/documents/{name}").status_code == 200
        done = searches[0]
        while searches[0] < done + 3 and thread.is_alive():
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(60)
    assert not problems, problems[:5]
    assert seen == {"alpha", "beta"}  # the hammer really ran against both versions
    hits = docs.post("/search", json={"query": "Zebra pension fund edition", "k": 8}).json()["results"]
    assert name not in {h["document"] for h in hits}


def test_unknown_document_is_404(docs):
    response = docs.delete("/documents/" + SEED)  # in the shared corpus, not in this one
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"


# --- abuse (issue 12) -----------------------------------------------------------------------------------------------

def test_a_long_chinese_name_is_201_not_500(docs, fresh_assistant):
    name = "养老金" * 60 + ".txt"  # 180 characters, 543 bytes
    response = _upload(docs, name, b"Koala superannuation memo.\n\nThe Koala fund invests in eucalyptus groves.\n")
    assert response.status_code == 201, response.text
    stored = response.json()["document"]["id"]
    assert len(stored.encode()) <= 200 and stored.endswith(".txt")
    assert docs.delete(f"/documents/{stored}").status_code == 200


def test_names_that_clean_alike_are_409_not_a_silent_replacement(docs, fresh_assistant):
    first = _upload(docs, "fund notes.txt", b"Platypus fund memo.\n\nThe Platypus fund holds river bonds.\n")
    assert first.status_code == 201 and first.json()["document"]["id"] == "fund_notes.txt"
    clash = _upload(docs, "fund&notes.txt", b"Echidna fund memo.\n\nThe Echidna fund holds ant futures.\n")
    assert clash.status_code == 409 and clash.json()["error"]["type"] == "name_taken"
    assert b"Platypus" in (fresh_assistant.settings.corpus_dir / "fund_notes.txt").read_bytes()
    assert docs.delete("/documents/fund_notes.txt").status_code == 200


def test_a_waiting_writer_gets_503_with_retry_after_and_no_paths(make_client, fresh_assistant):
    quick = make_client(fresh_assistant, write_wait=0.2)
    with corpus_held(fresh_assistant.settings):
        for response in (_upload(quick, "late.txt", b"Late memo about pensions."), quick.post("/documents/sync"),
                         quick.delete("/documents/" + FACT_SHEET_MD)):
            assert response.status_code == 503 and response.headers["Retry-After"] == "5"
            assert response.json()["error"]["type"] == "busy"
            assert str(fresh_assistant.settings.index_dir) not in response.text and "pid" not in response.text
    assert quick.post("/documents/sync").status_code == 200
