"""assistant/errors.py: the error base's status/kind/headers, and server paths turned into public names."""

from __future__ import annotations

from pathlib import Path

from assistant.errors import Busy, InvalidInput, public, public_text


def test_errors_carry_status_kind_and_headers():
    busy = Busy("wait", retry_after=7, document="x")
    assert (busy.status, busy.kind, busy.headers, busy.extra, str(busy)) == (503, "busy", {"Retry-After": "7"},
                                                                             {"document": "x"}, "wait")
    assert InvalidInput("bad").status == 422


def test_server_paths_become_public_names(make_settings):
    settings = make_settings()
    corpus, index = str(settings.corpus_dir), str(settings.index_dir)
    assert public_text(f"cannot read {corpus}/a/b.pdf", settings) == "cannot read corpus/a/b.pdf"
    report = public({"corpus_dir": corpus, "index_dir": index, "model_cache": str(settings.model_cache),
                     "other": "/opt/secret/model.bin", "k": 5, "list": [f"{index}/x"]}, settings)
    assert report == {"corpus_dir": "corpus", "index_dir": "index", "model_cache": "models", "other": "model.bin",
                      "k": 5, "list": ["index/x"]}
    assert str(Path.home()) not in public_text(f"{Path.home()}/.cache/x", settings)
