"""Step 4, embed: passages and queries become vectors with a sentence-transformers model, using its own prompts.

The model runs in this process (``ASSISTANT_DEVICE`` cpu / cuda / mps), or on an OpenAI-compatible embeddings
server serving the same model (``ASSISTANT_EMBEDDING_URL``: vLLM, text-embeddings-inference), so ingest and query
embedding scale out across GPU boxes. Either way the client applies the model's prompts and the index records the
same model id, so vectors of one index always come from one model. ``make_embedder`` picks the right one.
``TextEmbedder`` is what the rest of the pipeline asks of an embedder, so a wrapper (api/batching.py) or a stand-in
(bench/standin.py) takes the model's place without being one.

The embedder is also a LangChain ``Embeddings``, so it plugs into any LangChain vector store or retriever.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.errors import AssistantError
from assistant.model_fetch import resolve_model
from assistant.schema import Passage
from assistant.settings import Settings, apply_offline_environment


def _model_fingerprint(source: Path | str) -> str:
    if isinstance(source, Path):
        digest = hashlib.sha1()
        for name in ("config.json", "modules.json", "config_sentence_transformers.json"):
            if (source / name).is_file():
                digest.update((source / name).read_bytes())
        return digest.hexdigest()[:10]
    return "hub"


class TextEmbedder(Protocol):
    """What the store, sync, the retriever, the sentence index and the claim grader use of an embedder."""

    @property
    def model_id(self) -> str:
        """The model's name and weights fingerprint: the index records it, so one index holds one model's vectors."""
        ...

    @property
    def batch_size(self) -> int: ...

    @property
    def loaded(self) -> bool:
        """Whether the model is ready to encode, without loading it."""
        ...

    def passage_input(self, passage: Passage) -> str: ...

    def document_input(self, title: str, text: str, context: str = "") -> str: ...

    def embed_passages(self, passages: list[Passage],
                       progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def embed_document_inputs(self, inputs: list[str],
                              progress: Callable[[int], None] | None = None) -> np.ndarray: ...

    def embed_queries(self, queries: list[str]) -> np.ndarray: ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class Embedder(Embeddings):
    """Loads the model once; encodes documents and queries with the model's ``document``/``query`` prompts."""

    def __init__(self, settings: Settings):
        name, source = resolve_model(settings)
        self.settings = settings
        self.source = source
        label = Path(name).name if isinstance(source, Path) else name
        # Known without loading the weights, so a sync with nothing to embed never pays for the model.
        self.model_id = f"{label}@{_model_fingerprint(source)}"
        self.batch_size = settings.batch_size
        self._model = None
        self.query_prompt: str | None = None
        self.document_template = ""
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()  # torch inference from several threads at once only thrashes the cores
        self.calls = 0  # number of texts encoded: tests and benchmarks check that unchanged work is skipped

    @property
    def loaded(self) -> bool:
        """Whether the model is ready to encode (its weights are in memory), without loading it."""
        return self._model is not None

    @property
    def model(self):
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self):
        import torch
        from sentence_transformers import SentenceTransformer

        if self.settings.torch_threads:
            torch.set_num_threads(self.settings.torch_threads)
        dtype = getattr(torch, self.settings.embedding_dtype)
        model = SentenceTransformer(str(self.source), device=self.settings.device,
                                    model_kwargs={"torch_dtype": dtype},
                                    local_files_only=not self.settings.allow_hub_download)
        self._set_prompts(model.prompts or {})
        skip_all_true_attention_masks(model)
        return model

    def _set_prompts(self, prompts: dict[str, str]) -> None:
        # EmbeddingGemma's document prompt names the title ("title: none | text: "); we fill in the real one.
        document_prompt = prompts.get("document", "")
        self.document_template = ("title: {title} | text: {text}" if document_prompt.startswith("title:")
                                  else document_prompt.replace("{", "{{").replace("}", "}}") + "{text}")
        self.query_prompt = prompts.get("query", "")

    def _ready(self) -> None:
        """Whatever encoding needs first: for the local model, the model itself (its prompts come with it)."""
        self.model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    def passage_input(self, passage: Passage) -> str:
        return self.document_input(passage.title, passage.text, passage.context)

    def document_input(self, title: str, text: str, context: str = "") -> str:
        """The model's document prompt around ``text``, with its title and the heading it sits under."""
        self._ready()  # the templates come from the model's prompts
        body = f"{context}\n{text}" if context else text
        return self.document_template.format(title=title or "none", text=body)

    def _encode_step(self, texts: list[str]) -> np.ndarray:
        with self._encode_lock:
            return self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)

    def _step(self, total: int, progress) -> int:
        """Texts per step between progress reports (all at once without a progress bar)."""
        return self.batch_size * 4 if progress else max(total, 1)

    def _encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        self._ready()
        step = self._step(len(texts), progress)
        parts = []
        for i in range(0, len(texts), step):
            parts.append(self._encode_step(texts[i:i + step]))
            self.calls += len(texts[i:i + step])
            if progress:
                progress(len(texts[i:i + step]))
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, self.dimension), np.float32)

    def embed_passages(self, passages: list[Passage], progress: Callable[[int], None] | None = None) -> np.ndarray:
        return self._encode([self.passage_input(p) for p in passages], progress)

    def embed_document_inputs(self, inputs: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Encode texts already wrapped in the document prompt (``document_input``)."""
        return self._encode(inputs, progress)

    def embed_queries(self, queries: list[str]) -> np.ndarray:
        self._ready()
        return self._encode([(self.query_prompt or "") + q for q in queries])

    # --- LangChain Embeddings interface ---
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self._ready()
        return self._encode([self.document_template.format(title="none", text=t) for t in texts]).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_queries([text])[0].tolist()


def skip_all_true_attention_masks(model) -> bool:
    """Let a bidirectional sliding-window model (EmbeddingGemma) skip building attention masks that allow everything.

    For every input, transformers builds each layer type's mask with ``torch.vmap`` over a Python mask function,
    about 10 ms on this CPU (a seventh of one query's embedding), even when there is no padding and the input is
    shorter than the window, so that the mask lets every token see every other. Scaled dot-product attention without
    a mask computes the same thing: the vectors are bit for bit the same. Inputs with padding (batches of unequal
    lengths) or longer than the window keep their masks. Returns whether the model is of that kind.
    """
    import torch

    transformer = model[0] if len(model) else None
    network = getattr(transformer, "auto_model", None)
    config = getattr(network, "config", None)
    window = getattr(config, "sliding_window", None)
    layer_types = set(getattr(config, "layer_types", None) or ())
    if (network is None or config is None or not getattr(config, "use_bidirectional_attention", False) or not window
            or getattr(config, "_attn_implementation", None) != "sdpa"
            or not layer_types or not layer_types <= {"full_attention", "sliding_attention"}):
        return False
    forward = network.forward

    def forward_without_all_true_masks(*args, **kwargs):
        mask = kwargs.get("attention_mask")
        # a token sees those less than ``window`` away: all of an input of at most ``window`` tokens
        if isinstance(mask, torch.Tensor) and mask.dim() == 2 and mask.shape[1] <= window and bool(mask.all()):
            kwargs["attention_mask"] = dict.fromkeys(layer_types)  # per layer type, no mask: attend to every token
        return forward(*args, **kwargs)

    # sentence-transformers calls the network's ``forward`` by name, so a forward hook would never run; deleting
    # this instance attribute gives the class's forward back
    network.forward = forward_without_all_true_masks
    return True


class EmbeddingServerError(AssistantError, RuntimeError):
    """The embeddings server is unreachable, failed, answered nonsense, or serves another model than the index's."""

    expose = False  # names the embeddings server


def _served_name_matches(served: str, label: str) -> bool:
    # Servers name a model by its hub id ("google/embeddinggemma-300m") or by a folder name; the index's label is
    # the last path part of either.
    return served.rstrip("/").rsplit("/", 1)[-1].lower() == label.lower()


class RemoteEmbedder(Embedder):
    """The same model served by an OpenAI-compatible ``/v1/embeddings`` endpoint (vLLM, text-embeddings-inference).

    The model's folder is still needed here for its small config files only (prompts, and the fingerprint in
    ``model_id``), never its weights: `assistant models fetch` once, or point ASSISTANT_EMBEDDING_MODEL at a copy.
    The served model's name must be this model's, else every request is refused: an index never mixes models.
    """

    def __init__(self, settings: Settings):
        super().__init__(settings)
        if not isinstance(self.source, Path):
            raise EmbeddingServerError("a remote embedder needs the model's folder for its prompts and id: run "
                                       "`assistant models fetch` or set ASSISTANT_EMBEDDING_MODEL to a folder")
        import httpx

        self.url = (settings.embedding_url or "").rstrip("/")
        self.label = self.model_id.split("@", 1)[0]
        self.batch_size = settings.embedding_remote_batch
        headers = {"Authorization": f"Bearer {settings.embedding_api_key}"} if settings.embedding_api_key else {}
        self._http = httpx.Client(timeout=settings.embedding_timeout, headers=headers)
        self._served: str | None = None
        self._dimension: int | None = None
        self._pool = ThreadPoolExecutor(max_workers=settings.embedding_remote_parallel,
                                        thread_name_prefix="remote-embed")

    @property
    def loaded(self) -> bool:
        """Whether the server was reached and serves this model."""
        return self._served is not None

    @property
    def model(self):
        raise EmbeddingServerError(f"the model runs on {self.url}; there are no local weights to use")

    def _ready(self) -> None:
        if self._served is None:
            with self._load_lock:
                if self._served is None:
                    config = Path(self.source) / "config_sentence_transformers.json"
                    prompts = json.loads(config.read_text()).get("prompts", {}) if config.is_file() else {}
                    self._set_prompts(prompts or {})
                    self._served = self._check_served_model()

    def _request(self, method: str, path: str, **kwargs) -> dict:
        import httpx

        try:
            response = self._http.request(method, self.url + path, **kwargs)
        except httpx.TimeoutException:
            raise EmbeddingServerError(f"the embeddings server {self.url} did not answer within "
                                       f"{self.settings.embedding_timeout:g} s (ASSISTANT_EMBEDDING_TIMEOUT)") from None
        except httpx.HTTPError as exc:
            raise EmbeddingServerError(f"cannot reach the embeddings server {self.url}: {exc}") from None
        if response.status_code != 200:
            raise EmbeddingServerError(f"the embeddings server {self.url}{path} answered {response.status_code}: "
                                       f"{response.text[:300]}")
        try:
            return response.json()
        except ValueError:
            raise EmbeddingServerError(f"the embeddings server {self.url}{path} answered with no JSON") from None

    def _check_served_model(self) -> str:
        listed = [m.get("id", "") for m in self._request("GET", "/models").get("data", [])]
        wanted = self.settings.embedding_served_model
        if wanted is None:
            if len(listed) != 1:
                raise EmbeddingServerError(f"the embeddings server {self.url} serves {listed or 'no models'}; set "
                                           "ASSISTANT_EMBEDDING_SERVED_MODEL to the one to use")
            wanted = listed[0]
        elif wanted not in listed:
            raise EmbeddingServerError(f"the embeddings server {self.url} does not serve {wanted!r} (it serves {listed})")
        if not _served_name_matches(wanted, self.label):
            raise EmbeddingServerError(
                f"the embeddings server {self.url} serves {wanted!r}, but this index is embedded with {self.label!r} "
                f"({self.model_id}); vectors of two models must never be mixed in one index")
        return wanted

    def _encode_step(self, texts: list[str]) -> np.ndarray:
        # Requests of one step go out in parallel, so the server can batch several of them on its GPU.
        size = self.batch_size
        return np.concatenate(list(self._pool.map(self._post, [texts[i:i + size] for i in range(0, len(texts), size)])))

    def _step(self, total: int, progress) -> int:
        return self.batch_size * self.settings.embedding_remote_parallel if progress else max(total, 1)

    def _post(self, texts: list[str]) -> np.ndarray:
        body = self._request("POST", "/embeddings", json={"model": self._served, "input": texts,
                                                          "encoding_format": "float"})
        try:
            rows = sorted(body["data"], key=lambda row: row["index"])
            vectors = np.array([row["embedding"] for row in rows], dtype=np.float32)
        except (KeyError, TypeError, ValueError):
            raise EmbeddingServerError(f"the embeddings server {self.url} answered without a list of embeddings") from None
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise EmbeddingServerError(f"the embeddings server {self.url} returned {len(vectors)} vectors for "
                                       f"{len(texts)} texts")
        if self._dimension is not None and vectors.shape[1] != self._dimension:
            raise EmbeddingServerError(f"the embeddings server {self.url} changed its vector size from "
                                       f"{self._dimension} to {vectors.shape[1]}")
        self._dimension = vectors.shape[1]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1, norms)  # as the local model's normalize_embeddings=True

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed_queries(["dimension"])
        assert self._dimension is not None  # set by the first embeddings request
        return int(self._dimension)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._http.close()


def make_embedder(settings: Settings) -> Embedder:
    """The in-process model, or the remote one when ``ASSISTANT_EMBEDDING_URL`` is set."""
    apply_offline_environment()  # before transformers or the hub client is imported
    return RemoteEmbedder(settings) if settings.embedding_url else Embedder(settings)
