"""All settings in one place; every field can be set as an ``ASSISTANT_<NAME>`` environment variable."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "google/embeddinggemma-300m"
DEVICE_BATCH_SIZE = {"cpu": 16, "mps": 64, "cuda": 256}

# Libraries we depend on phone home or hit model hubs unless told otherwise; the product is offline by design.
OFFLINE_ENVIRONMENT = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
}


def apply_offline_environment() -> None:
    """Keep the libraries offline and quiet (values already set win). Called by the entry points (CLI, API app,
    embedder), never at import, so importing the settings changes nothing."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def _default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pension-assistant"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=None, extra="ignore")

    # --- corpus ---
    corpus_dir: Path = Field(PROJECT_ROOT / "corpus", description="folder of the documents that are indexed")
    corpus_manifest: Path = Field(PROJECT_ROOT / "corpus" / "sources.json",
                                  description="the list of sources with their URLs and sha256")
    corpus_mirror: Path | None = Field(None, description="a local copy of the sources, used before their URLs")
    fetch_timeout: float = Field(20.0, gt=0, le=600, description="seconds per source download")

    # --- embedding ---
    embedding_model: str = Field(DEFAULT_MODEL, min_length=1, description="hub name or folder of the embedding model")
    model_cache: Path = Field(default_factory=lambda: _default_cache() / "models",
                              description="where `assistant models fetch` puts the model")
    device: str = Field("cpu", pattern=r"^(cpu|mps|cuda(:\d+)?)$",
                        description="torch device of the local embedding model: cpu, mps, cuda or cuda:N")
    embedding_dtype: Literal["bfloat16", "float32", "float16"] = Field(
        "bfloat16", description="weights dtype of the local model")
    embed_batch_size: int | None = Field(None, ge=1, le=4096, description="texts per model call; default per device: "
                                         "cpu 16, mps 64, cuda 256 (a GPU only saturates with large batches)")
    torch_threads: int | None = Field(None, ge=1, le=512, description=(
        "CPU threads the local model may use in this process (default: torch's choice, every core). Several "
        "processes each using every core spin against each other: `serve --workers N` sets cores ÷ N"))
    allow_hub_download: bool = Field(False, description="let `models fetch` download from the Hugging Face hub")
    # An OpenAI-compatible /v1/embeddings server (vLLM, text-embeddings-inference) serving the same model, instead
    # of loading it here: ingest and query embedding then scale out across GPU boxes.
    embedding_url: str | None = Field(None, description="base URL of an OpenAI-compatible embeddings server, "
                                                        "e.g. http://gpu1:8080/v1; unset: the model runs in-process")
    embedding_api_key: str | None = Field(None, description="bearer token for embedding_url")
    embedding_served_model: str | None = Field(None, description="model name the server expects; default: "
                                                                 "the only model it lists")
    embedding_timeout: float = Field(60.0, gt=0, le=600, description="seconds per embeddings request")
    embedding_remote_batch: int = Field(64, ge=1, le=2048, description="texts per embeddings request")
    embedding_remote_parallel: int = Field(4, ge=1, le=64, description="embeddings requests in flight at once")

    # --- splitting ---
    passage_tokens: int = Field(160, ge=16, le=8192, description="passage length in model tokens")
    passage_overlap_tokens: int = Field(0, ge=0, le=4096, description="tokens repeated between neighbouring passages")
    max_document_passages: int = Field(20_000, ge=1, description=(
        "A document that splits into more passages is refused with a clear reason (a 15 MB repetitive file made "
        "25,084 passages, hours of embedding)"))

    # --- index ---
    index_dir: Path = Field(PROJECT_ROOT / "index", description="folder of the embedded index and its registry")
    sync_lease_seconds: float = Field(60.0, ge=5, le=3600, description="with chroma_url: a sync's lock lease in the "
                                      "server expires this long after its holder's last heartbeat (every third)")
    chroma_url: str | None = Field(None, description="a Chroma server (several workers); unset: embedded in index_dir")
    collection: str = Field("passages", min_length=1, max_length=63, description="Chroma collection name prefix")
    sync_commit_passages: int = Field(5000, ge=1, le=1_000_000, description=(
        "Documents are committed to the registry in batches of about this many passages (one write per batch)"))

    # --- retrieval and answering ---
    top_k: int = Field(5, ge=1, le=100, description="passages retrieved per question")
    candidates: int = Field(30, ge=1, le=1000, description="passages scored before the top_k are kept")
    # Measured on eval/questions.jsonl (README, 'Retrieval'): every weight > 0 lowered hit@5 and MRR overall.
    lexical_weight: float = Field(0.0, ge=0, le=1, description="share of BM25 in the fused ranking")
    sentence_weight: float | None = Field(
        default=None, ge=0, le=1,
        description="weight of a passage's best sentence cosine (among the query's nearest sentences) in its score; "
                    "default: the weight fit on dev (assistant/retrieval_fit.json)")
    abstain_threshold: float | None = Field(None, ge=-1, le=1, description=(
        "on-topic floor: best passage or sentence cosine below this: abstain; default: the floor fit on dev with the "
        "answer model (assistant/answer_model.json)"))
    max_answer_sentences: int = Field(3, ge=1, le=50, description="most sentences in an answer")
    answer_model_path: Path | None = Field(
        default=None, description="Fitted answer model (JSON); default: assistant/answer_model.json of the package")
    answer_sentence_candidates: int = Field(
        default=10, ge=0, le=200, description="Sentences taken directly from the sentence index as extra candidates")
    answer_threshold: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="Answer only above this confidence instead of the fitted model's threshold: lower answers more "
                    "questions at more risk (the eval report's risk–coverage curve shows the trade)")
    weak_evidence_below: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="An answer whose confidence is below this is marked weak_evidence (shown as such in the chat page "
                    "and the CLI): the answer model's calibrated probability says its quotes more likely miss the "
                    "asked fact than hold it, so the reader is told to check them (0: never marked)")
    extra_sentence_ratio: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="A further sentence is quoted beside the best one when its probability of answering is at least "
                    "this share of the best's (0: up to max_answer_sentences always, 1: the best alone), instead of "
                    "the near-tie ratio fitted on dev")

    # --- optional LLM ---
    llm_provider: Literal["none", "openai", "ollama"] = Field(
        "none", description="none: extractive answers; openai (any compatible server) or ollama: an LLM writes them")
    llm_base_url: str | None = Field(None, description="base URL of the chat model server")
    llm_model: str | None = Field(None, description="chat model name on that server")
    llm_api_key: str | None = Field(None, description="bearer token for llm_base_url")
    llm_timeout: float = Field(60.0, gt=0, le=3600, description="seconds per chat model request")
    llm_temperature: float = Field(0.0, ge=0, le=2, description="sampling temperature of the chat model")
    translate_quotes: bool = Field(True, description=(
        "with a chat model configured, give each quote in the other language than the question a machine "
        "translation, labelled as such, beside the verified original"))

    # --- conversation ---
    conversation_db: Path | None = Field(None, description="default: <index_dir>/conversations.sqlite3")
    history_turns: int = Field(6, ge=0, le=100, description="earlier exchanges a follow-up question may use")

    # --- service ---
    api_key: str | None = Field(None, description="when set, state-changing API requests need it (Bearer)")
    max_upload_bytes: int = Field(20 * 1024 * 1024, ge=1, description="largest uploaded document (413)")
    max_request_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="largest request body (413)")
    max_question_chars: int = Field(2000, ge=1, le=1_000_000, description="longest question (422)")
    max_history_turns: int = Field(40, ge=0, le=1000, description=(
        "Most earlier turns one chat request may send (history or OpenAI messages); more is a 422. Only the last "
        "history_turns * 2 of them are read."))
    max_turn_chars: int = Field(8000, ge=1, le=1_000_000, description="Longest earlier turn a chat request may send (422)")
    max_chat_request_bytes: int = Field(512 * 1024, ge=1024, description=(
        "Body limit of /chat and /v1/chat/completions (413); uploads keep max_request_bytes"))
    write_wait: float = Field(30.0, ge=0, le=3600, description=(
        "Seconds a corpus change (upload, delete, sync) waits for a running one before answering 503 + Retry-After"))
    allowed_hosts: list[str] = Field(["localhost", "127.0.0.1", "::1"], description=(
        "Host names a state-changing request may be addressed to (Host header) and come from (Origin header): "
        "refuses cross-site form posts (CSRF) and DNS rebinding. '*' allows any. Add the server's public name when "
        "it is served beyond this machine"))
    max_eval_bytes: int = Field(5 * 1024 * 1024, ge=1, description="Largest eval file POST /evaluations accepts (413)")
    max_eval_rows: int = Field(5000, ge=1, description="Most lines an eval file may have (413), checked as it streams in")
    max_reported_rows: int = Field(20, ge=0, le=10_000, description=(
        "Malformed eval rows reported one by one; the rest are only counted"))
    max_running_evaluations: int = Field(2, ge=1, le=64, description="Evaluations running at once per worker (429 beyond)")
    max_stored_evaluations: int = Field(50, ge=1, description="Finished evaluations kept on disk; the oldest go first")
    follow_corpus_symlinks: bool = Field(False, description=(
        "Index a symlink in the corpus folder that points outside it (off: such links are refused and logged)"))

    @property
    def batch_size(self) -> int:
        """Texts per embedding-model call: the configured size, else the device's default."""
        return self.embed_batch_size or DEVICE_BATCH_SIZE[self.device.split(":")[0]]

    @property
    def conversation_path(self) -> Path:
        return self.conversation_db or self.index_dir / "conversations.sqlite3"

    @property
    def fetched_dir(self) -> Path:
        """Where `corpus fetch` puts sources that are listed in the manifest but not committed."""
        return self.corpus_dir / "fetched"


def load_settings(**values) -> Settings:
    """Settings from ``values`` and the ASSISTANT_* environment; a bad value raises InvalidSettings naming it."""
    from pydantic import ValidationError

    from assistant.errors import InvalidSettings

    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            problems.append(f"ASSISTANT_{name.upper()}={error.get('input')!r}: {error['msg']}")
        raise InvalidSettings("invalid settings: " + "; ".join(problems)) from None


@lru_cache
def get_settings() -> Settings:
    return load_settings()
