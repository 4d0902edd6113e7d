"""Embedding: device batch sizes, and the remote embedder against a local stand-in OpenAI-compatible server."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.embed import EmbeddingServerError, RemoteEmbedder, make_embedder, skip_all_true_attention_masks
from assistant.schema import Passage
from assistant.settings import Settings
from assistant.sync import sync
from tests.conftest import CEA_MD, FACT_SHEET_MD, copy_into
from tests.helpers import free_port, wait_started

PROMPTS = '{"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": null}'


def test_device_picks_the_default_batch_size(tmp_path):
    assert Settings(device="cpu").batch_size == 16
    assert Settings(device="cuda").batch_size == Settings(device="cuda:1").batch_size == 256
    assert Settings(device="mps").batch_size == 64
    assert Settings(device="cuda", embed_batch_size=32).batch_size == 32
    with pytest.raises(ValueError):
        Settings(device="tpu")
    with pytest.raises(ValueError):
        Settings(embed_batch_size=0)


@pytest.fixture(scope="module")
def prompted_model(tmp_path_factory, minilm_path) -> Path:
    """MiniLM under its hub name, with query/document prompts (as EmbeddingGemma has), weights shared by symlink."""
    folder = tmp_path_factory.mktemp("models") / "all-MiniLM-L6-v2"
    folder.mkdir()
    for item in Path(minilm_path).iterdir():
        if item.name != "config_sentence_transformers.json":
            (folder / item.name).symlink_to(item)
    (folder / "config_sentence_transformers.json").write_text(PROMPTS)
    return folder


class StandIn:
    """A real HTTP server speaking the OpenAI embeddings API with real MiniLM vectors, no prompts (as vLLM/TEI)."""

    def __init__(self, minilm_path: str):
        import uvicorn
        from fastapi import FastAPI, Header, HTTPException
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(minilm_path, device="cpu")
        self.served = "sentence-transformers/all-MiniLM-L6-v2"
        self.api_key: str | None = None
        self.delay = 0.0
        self.inputs: list[str] = []
        self.requests = 0
        app = FastAPI()

        def authorise(authorization: str | None) -> None:
            if self.api_key and authorization != f"Bearer {self.api_key}":
                raise HTTPException(401, "invalid api key")

        @app.get("/v1/models")
        def models(authorization: str | None = Header(None)):
            authorise(authorization)
            return {"object": "list", "data": [{"id": self.served, "object": "model"}]}

        @app.post("/v1/embeddings")
        def embeddings(body: dict, authorization: str | None = Header(None)):
            authorise(authorization)
            if body.get("model") != self.served:
                raise HTTPException(404, f"model {body.get('model')} not found")
            time.sleep(self.delay)
            self.requests += 1
            self.inputs.extend(body["input"])
            vectors = self.model.encode(body["input"], normalize_embeddings=False)
            return {"object": "list", "model": self.served,
                    "data": [{"object": "embedding", "index": i, "embedding": v.tolist()} for i, v in enumerate(vectors)]}

        port = free_port()
        self.url = f"http://127.0.0.1:{port}/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_started(self.server, self.thread, 30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def stand_in(minilm_path):
    server = StandIn(minilm_path)
    yield server
    server.stop()


@pytest.fixture
def server(stand_in):
    stand_in.served, stand_in.api_key, stand_in.delay = "sentence-transformers/all-MiniLM-L6-v2", None, 0.0
    stand_in.inputs.clear()
    return stand_in


def _passages() -> list[Passage]:
    texts = ["Within 180 days the Secretary of Labor shall reexamine guidance.", "美国401(k)计划起源于1978年。",
             "Alternative assets include private equity and real estate."]
    return [Passage(chunk_id=f"d:v:{i}", document="d", title="EO 14330" if i == 0 else "", start=0, end=len(t),
                    text=t, language="zh" if i == 1 else "en", version="v", context="Sec. 2" if i == 2 else "")
            for i, t in enumerate(texts)]


def test_remote_vectors_equal_the_local_models_with_the_prompts_applied_by_the_client(server, make_settings,
                                                                                       prompted_model):
    local = make_embedder(make_settings(embedding_model=str(prompted_model)))
    remote = make_embedder(make_settings(embedding_model=str(prompted_model), embedding_url=server.url,
                                         embedding_remote_batch=2))
    assert isinstance(remote, RemoteEmbedder) and not isinstance(local, RemoteEmbedder)
    assert remote.model_id == local.model_id  # one index may be written by either
    passages = _passages()
    remote_vectors = remote.embed_passages(passages, progress=lambda n: None)
    # two requests in flight at once (batches of 2): the server sees them in either order
    assert sorted(server.inputs) == sorted(f"passage: {p.context}\n{p.text}" if p.context else f"passage: {p.text}"
                                           for p in passages)
    assert remote_vectors.shape == (3, 384) and remote.calls == 3
    np.testing.assert_allclose(np.linalg.norm(remote_vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(remote_vectors, local.embed_passages(passages), atol=1e-4)
    query = remote.embed_queries(["What did the order ask the Secretary of Labor?"])
    assert server.inputs[-1] == "query: What did the order ask the Secretary of Labor?"
    np.testing.assert_allclose(query, local.embed_queries(["What did the order ask the Secretary of Labor?"]),
                               atol=1e-4)
    assert remote.dimension == 384 and len(remote.embed_query("x")) == 384


def test_a_server_serving_another_model_is_refused(server, make_settings, prompted_model):
    server.served = "BAAI/bge-small-en-v1.5"
    remote = make_embedder(make_settings(embedding_model=str(prompted_model), embedding_url=server.url))
    with pytest.raises(EmbeddingServerError, match="serves 'BAAI/bge-small-en-v1.5', but this index is embedded "
                                                   "with 'all-MiniLM-L6-v2'.*never be mixed"):
        remote.embed_queries(["anything"])
    assert server.inputs == []  # nothing was embedded by the wrong model
    named = make_embedder(make_settings(embedding_model=str(prompted_model), embedding_url=server.url,
                                        embedding_served_model="sentence-transformers/all-MiniLM-L6-v2"))
    with pytest.raises(EmbeddingServerError, match="does not serve 'sentence-transformers/all-MiniLM-L6-v2'"):
        named.embed_queries(["anything"])


def test_clear_errors_for_keys_timeouts_and_unreachable_servers(server, make_settings, prompted_model):
    server.api_key = "secret"
    without_key = make_embedder(make_settings(embedding_model=str(prompted_model), embedding_url=server.url))
    with pytest.raises(EmbeddingServerError, match="answered 401"):
        without_key.embed_queries(["q"])
    with_key = make_embedder(make_settings(embedding_model=str(prompted_model), embedding_url=server.url,
                                           embedding_api_key="secret"))
    assert with_key.embed_queries(["q"]).shape == (1, 384)

    server.delay = 2.0
    slow = make_embedder(make_settings(embedding_model=str(prompted_model), embedding_url=server.url,
                                       embedding_api_key="secret", embedding_timeout=0.5))
    slow._ready()  # the model check is quick; the embeddings request is not
    with pytest.raises(EmbeddingServerError, match="did not answer within 0.5 s"):
        slow.embed_queries(["q"])

    closed = free_port()
    gone = make_embedder(make_settings(embedding_model=str(prompted_model), embedding_url=f"http://127.0.0.1:{closed}/v1"))
    with pytest.raises(EmbeddingServerError, match="cannot reach the embeddings server"):
        gone.embed_queries(["q"])


def test_an_index_written_remotely_is_used_locally_without_re_embedding(server, make_settings, prompted_model,
                                                                         corpus_mirror, open_store):
    settings = make_settings(embedding_model=str(prompted_model), embedding_url=server.url)
    copy_into(settings.corpus_dir, [CEA_MD, FACT_SHEET_MD], corpus_mirror)
    remote = make_embedder(settings)
    report = sync(settings, remote, open_store(settings, remote.model_id), show_progress=False)
    assert report.embedded == report.passages > 0
    # passages, and the sentences of the sentence index: all with the document prompt
    assert len([text for text in server.inputs if text.startswith("passage: ")]) == \
        report.passages + report.sentences_embedded

    local_settings = make_settings(embedding_model=str(prompted_model))
    local = make_embedder(local_settings)
    again = sync(local_settings, local, open_store(local_settings, local.model_id), show_progress=False)
    assert again.embedded == 0 and local.calls == 0 and len(again.unchanged) == 2


def test_torch_threads_caps_the_models_cpu_threads(make_settings):
    import torch

    before = torch.get_num_threads()
    try:
        embedder = make_embedder(make_settings(torch_threads=1))
        embedder.embed_queries(["warm-up"])  # loading the model applies the setting
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_serve_shares_the_cores_among_its_workers():
    from assistant.cli import threads_per_worker

    assert threads_per_worker(1, 8, None) is None  # one process: torch's own choice
    assert threads_per_worker(4, 8, None) == 2
    assert threads_per_worker(4, 2, None) == 1  # never below one thread
    assert threads_per_worker(4, 8, 3) == 3  # ASSISTANT_TORCH_THREADS wins


def test_a_model_without_bidirectional_sliding_windows_keeps_its_masks(shared_embedder):
    network = shared_embedder.model[0].auto_model  # MiniLM: a BERT encoder
    forward = network.forward
    assert skip_all_true_attention_masks(shared_embedder.model) is False
    assert network.forward == forward and "forward" not in vars(network)


@pytest.mark.slow
def test_embeddinggemma_skips_only_masks_that_allow_everything_and_its_vectors_do_not_change(monkeypatch):
    from transformers.models.gemma3 import modeling_gemma3

    from assistant.embed import Embedder

    embedder = Embedder(Settings(llm_provider="none"))  # the default model, as `scripts/setup.sh` fetched it
    network = embedder.model[0].auto_model
    assert network.forward.__name__ == "forward_without_all_true_masks"
    built: list[int] = []
    original = modeling_gemma3.create_causal_mask
    monkeypatch.setattr(modeling_gemma3, "create_causal_mask", lambda **kw: built.append(1) or original(**kw))
    texts = ["When did New York let pension funds buy stocks?", "纽约州在哪一年率先采纳谨慎人规则,允许养老金投资股票?"]

    one = [embedder.embed_queries([t]) for t in texts]  # one input: no padding, shorter than the window
    assert not built
    batch = embedder.embed_queries(texts)  # unequal lengths: padded, so the masks are built
    assert built

    monkeypatch.delattr(network, "forward")  # the model's own forward, which builds every mask
    assert all(np.array_equal(embedder.embed_queries([t]), vector) for t, vector in zip(texts, one))
    assert np.array_equal(embedder.embed_queries(texts), batch)
