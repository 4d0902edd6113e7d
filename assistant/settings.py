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
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
}.items():
    os.environ.setdefault(_name, _value)


def _default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pension-assistant"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=None, extra="ignore")

    # --- corpus ---
    corpus_dir: Path = PROJECT_ROOT / "corpus"
    corpus_manifest: Path = PROJECT_ROOT / "corpus" / "sources.json"
    corpus_mirror: Path | None = None
    fetch_timeout: float = 20.0

    # --- embedding ---
    embedding_model: str = DEFAULT_MODEL
    model_cache: Path = Field(default_factory=lambda: _default_cache() / "models")
    device: str = Field("cpu", pattern=r"^(cpu|mps|cuda(:\d+)?)$",
                        description="torch device of the local embedding model: cpu, mps, cuda or cuda:N")
    embedding_dtype: Literal["bfloat16", "float32", "float16"] = "bfloat16"
    embed_batch_size: int | None = Field(None, ge=1, le=4096, description="texts per model call; default per device: "
                                         "cpu 16, mps 64, cuda 256 (a GPU only saturates with large batches)")
    allow_hub_download: bool = False
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
    passage_tokens: int = 160
    passage_overlap_tokens: int = 0
    max_document_passages: int = Field(20_000, ge=1, description=(
        "A document that splits into more passages is refused with a clear reason (a 15 MB repetitive file made "
        "25,084 passages, hours of embedding)"))

    # --- index ---
    index_dir: Path = PROJECT_ROOT / "index"
    sync_lease_seconds: float = Field(60.0, ge=5, le=3600, description="with chroma_url: a sync's lock lease in the "
                                      "server expires this long after its holder's last heartbeat (every third)")
    chroma_url: str | None = None
    collection: str = "passages"
    sync_commit_passages: int = Field(5000, ge=1, le=1_000_000, description=(
        "Documents are committed to the registry in batches of about this many passages (one write per batch)"))

    # --- retrieval and answering ---
    top_k: int = 5
    candidates: int = 30
    # Measured on eval/questions.jsonl (README, 'Retrieval'): every weight > 0 lowered hit@5 and MRR overall.
    lexical_weight: float = 0.0
    abstain_threshold: float = 0.36  # top passage cosine below this: abstain (calibrated on the eval dev split)
    max_answer_sentences: int = 3
    answer_model_path: Path | None = Field(
        default=None, description="Fitted answer model (JSON); default: assistant/answer_model.json of the package")
    answer_sentence_candidates: int = Field(
        default=10, ge=0, le=200, description="Sentences taken directly from the sentence index as extra candidates")

    # --- optional LLM ---
    llm_provider: Literal["none", "openai", "ollama"] = "none"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = 60.0
    llm_temperature: float = 0.0

    # --- conversation ---
    conversation_db: Path | None = None  # default: <index_dir>/conversations.sqlite3
    history_turns: int = 6

    # --- service ---
    api_key: str | None = None
    max_upload_bytes: int = 20 * 1024 * 1024
    max_request_bytes: int = 25 * 1024 * 1024
    max_question_chars: int = 2000
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


@lru_cache
def get_settings() -> Settings:
    return Settings()
