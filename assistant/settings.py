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
    device: str = "cpu"
    embedding_dtype: Literal["bfloat16", "float32", "float16"] = "bfloat16"
    embed_batch_size: int = 16
    allow_hub_download: bool = False

    # --- splitting ---
    passage_tokens: int = 160
    passage_overlap_tokens: int = 0

    # --- index ---
    index_dir: Path = PROJECT_ROOT / "index"
    chroma_url: str | None = None
    collection: str = "passages"

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
