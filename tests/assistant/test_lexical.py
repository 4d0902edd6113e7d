"""The on-disk lexical index: BM25 over jieba-segmented Chinese and English, incremental updates, filters."""

from __future__ import annotations

import math
import sqlite3
import threading

import pytest

from assistant.lexical import LexicalIndex, tokenize
from assistant.schema import Passage


def _passages(doc: str, version: str, texts: list[str], language: str = "en") -> list[Passage]:
    out, offset = [], 0
    for i, text in enumerate(texts):
        out.append(Passage(chunk_id=f"{doc}:{version}:{i}", document=doc, title=doc, start=offset,
                           end=offset + len(text), text=text, language=language, version=version))
        offset += len(text) + 1
    return out


EO = ["Within 180 days the Secretary of Labor shall reexamine guidance on alternative assets in 401(k) plans.",
      "Alternative assets include private equity, real estate and actively managed vehicles investing in digital assets.",
      "Participation in defined contribution plans reached 1.2% growth in 2023."]
ZH = ["美国401(k)计划起源于1978年的《国内税收法》第401条(k)款。",
      "行政命令要求劳工部重新审视另类资产的指导意见。",
      "养老金制度的历史可以追溯到十九世纪。"]
CEA = ["Retail investors in defined contribution plans lack access to private markets and alternative investments."]


@pytest.fixture
def index(tmp_path):
    idx = LexicalIndex(tmp_path)
    yield idx
    idx.close()


def test_tokenize_segments_chinese_and_keeps_numbers():
    tokens = tokenize("劳工部重新审视另类资产 and 35% of 1.2% plans, 1,000 in 1978年的401(k)计划")
    assert "劳工部" in tokens and "另类" in tokens and "资产" in tokens and "计划" in tokens
    assert "35%" in tokens and "1.2%" in tokens and "1,000" in tokens and "1978" in tokens and "plans" in tokens
    assert "and" not in tokens and "of" not in tokens


def test_search_ranks_english_and_chinese(index):
    index.add(_passages("eo", "v1", EO) + _passages("seed", "s1", ZH, "zh") + _passages("cea", "c1", CEA))
    assert index.count() == 7
    hits = index.search("Secretary of Labor guidance", 3)
    assert hits[0][0] == "eo:v1:0" and hits[0][1] > 0
    assert [h[1] for h in hits] == sorted((h[1] for h in hits), reverse=True)
    assert index.search("另类资产", 3)[0][0] == "seed:s1:1"
    assert index.search("401(k)计划起源", 1)[0][0] == "seed:s1:0"
    assert index.search("1.2%", 2)[0][0] == "eo:v1:2"
    assert index.search("zzzz nothing matches", 5) == [] and index.search("the of and", 5) == []
    # FTS5 operators in a user's words are plain words, never syntax
    assert index.search('alternative OR NOT "assets" NEAR(', 5)


def test_filters_by_document_language_and_trusted_versions(index):
    index.add(_passages("eo", "v1", EO) + _passages("seed", "s1", ZH, "zh") + _passages("cea", "c1", CEA))
    query = "alternative assets defined contribution plans"
    assert {c.split(":")[0] for c, _ in index.search(query, 10)} == {"eo", "cea"}
    assert {c.split(":")[0] for c, _ in index.search(query, 10, documents=["cea"])} == {"cea"}
    assert index.search("另类资产", 10, language="en") == []
    assert index.search("另类资产", 10, language="zh")
    # a version that the registry does not list (being written, or left by a killed sync) is never returned
    assert {c.split(":")[0] for c, _ in index.search(query, 10, versions={"eo": "v1"})} == {"eo"}
    assert index.search(query, 10, versions={"eo": "v0", "cea": "c1"}) == [("cea:c1:0", pytest.approx(
        index.search(query, 10, documents=["cea"])[0][1]))]


def test_update_delete_and_sweep(index):
    index.add(_passages("eo", "v1", EO))
    index.add(_passages("eo", "v2", ["The Secretary of the Treasury shall report on retirement security."]))
    # both versions are indexed until the old one is deleted; readers pick the registered one
    assert index.indexed_versions() == {"eo": {"v1", "v2"}} and index.count() == 4
    assert {c for c, _ in index.search("Secretary", 10)} == {"eo:v1:0", "eo:v2:0"}
    assert index.search("Secretary", 10, versions={"eo": "v2"}) == [("eo:v2:0", pytest.approx(
        index.search("Secretary", 10, versions={"eo": "v2"})[0][1]))]
    assert index.delete("eo", keep_version="v2") == 3
    assert [c for c, _ in index.search("Secretary", 10)] == ["eo:v2:0"]
    assert index.search("Labor", 10) == [] and index.count() == 1
    assert index.indexed_versions() == {"eo": {"v2"}}

    # re-adding the same chunks (a retried sync) replaces them instead of duplicating
    index.add(_passages("eo", "v2", ["The Secretary of the Treasury shall report on retirement security."]))
    assert len(index.search("Treasury", 10)) == 1

    index.add(_passages("seed", "s1", ZH, "zh") + _passages("cea", "c1", CEA))
    assert index.sweep({"eo": "v2", "cea": "c1"}) == 3  # the seed is not registered any more
    assert index.search("另类资产", 5) == [] and index.indexed_versions() == {"eo": {"v2"}, "cea": {"c1"}}
    assert index.delete("eo") == 1 and index.search("Treasury", 5) == []
    assert index.delete("missing") == 0


def test_document_frequency_and_idf_follow_updates(index):
    index.add(_passages("eo", "v1", EO) + _passages("cea", "c1", CEA))
    assert index.document_frequency(["alternative", "secretary", "absent"]) == {"alternative": 3, "secretary": 1,
                                                                               "absent": 0}
    idf = index.idf(["alternative", "secretary", "absent"])
    assert idf["absent"] > idf["secretary"] > idf["alternative"] > 0
    assert idf["secretary"] == pytest.approx(math.log(1 + (4 - 1 + 0.5) / 1.5))
    index.delete("cea")
    assert index.document_frequency(["alternative"]) == {"alternative": 2}


def test_reconcile_brings_a_node_copy_up_to_date(tmp_path):
    # a second node's copy: it lacks the registry's newest versions and still has a removed document
    node = LexicalIndex(tmp_path / "node")
    node.add(_passages("eo", "v1", EO) + _passages("gone", "g1", ["retirement plans of a removed document"]))
    source = {"eo": _passages("eo", "v2", EO[:1]), "seed": _passages("seed", "s1", ZH, "zh")}
    fetched = []

    def passages_of(doc_id):
        fetched.append(doc_id)
        return source[doc_id]

    assert node.reconcile({"eo": "v2", "seed": "s1"}, passages_of) == (4, 4)
    assert sorted(fetched) == ["eo", "seed"] and node.indexed_versions() == {"eo": {"v2"}, "seed": {"s1"}}
    assert node.reconcile({"eo": "v2", "seed": "s1"}, passages_of) == (0, 0) and len(fetched) == 2
    node.close()


def test_persists_and_serves_readers_while_written(tmp_path):
    writer = LexicalIndex(tmp_path)
    writer.add(_passages("eo", "v1", EO))
    reader = LexicalIndex(tmp_path)  # another process opens the same file
    errors = []

    def read():
        try:
            for _ in range(50):
                assert reader.search("Secretary of Labor", 1, versions={"eo": "v1"})[0][0] == "eo:v1:0"
        except (AssertionError, sqlite3.Error) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(20):
        writer.add(_passages(f"doc{i}", "x", [f"unrelated text number {i} about pensions"]))
    for t in threads:
        t.join()
    assert not errors and reader.count() == 23
    writer.close()
    reader.close()
