"""The corpus manifest: every source with its official URL and sha256; ``corpus fetch`` obtains the ones not committed.

A mirror copy must match its recorded sha256 exactly. A download from the official URL may differ (official pages
change; our Markdown copies are conversions of web pages): it is kept with a warning and its hash recorded locally.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import BaseModel

from assistant.fileio import write_atomic
from assistant.load import content_hash
from assistant.settings import Settings

RECEIPTS = "received.json"
log = logging.getLogger(__name__)


class Source(BaseModel):
    file: str
    title: str
    issuer: str
    date: str
    language: str
    url: str | None = None
    sha256: str
    size: int
    committed: bool = False
    why: str = ""


def read_manifest(settings: Settings) -> list[Source]:
    if not settings.corpus_manifest.is_file():
        return []
    return [Source(**s) for s in json.loads(settings.corpus_manifest.read_text())["sources"]]


def manifest_by_file(settings: Settings) -> dict[str, Source]:
    return {s.file: s for s in read_manifest(settings)}


@dataclass
class FetchReport:
    fetched: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # downloaded, but not the recorded bytes
    missing: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"fetched": self.fetched, "present": self.present, "changed": self.changed,
                "missing": [{"file": f, "reason": r} for f, r in self.missing]}


def fetch_sources(settings: Settings, log=None) -> FetchReport:
    """Put every non-committed manifest source into ``corpus/fetched/``: from the mirror, else from its URL."""
    log = log or logging.getLogger(__name__).info  # the CLI passes its own printer; library callers get records
    report = FetchReport()
    target_dir = settings.fetched_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    receipts_path = target_dir / RECEIPTS
    receipts = json.loads(receipts_path.read_text()) if receipts_path.is_file() else {}
    for source in read_manifest(settings):
        if source.committed:
            continue
        target = target_dir / source.file
        if target.is_file() and content_hash(target.read_bytes()) in {source.sha256, receipts.get(source.file, {}).get("sha256")}:
            report.present.append(source.file)
            continue
        problems = []
        mirror_copy = settings.corpus_mirror / source.file if settings.corpus_mirror else None
        if mirror_copy and mirror_copy.is_file():
            data = mirror_copy.read_bytes()
            if content_hash(data) == source.sha256:
                write_atomic(target, data)
                report.fetched.append(source.file)
                log(f"ok       {source.file} (mirror)")
                continue
            problems.append(f"mirror copy has sha256 {content_hash(data)[:12]}…, manifest says {source.sha256[:12]}…")
        elif settings.corpus_mirror:
            problems.append(f"not in mirror {settings.corpus_mirror}")
        if source.url:
            try:
                response = httpx.get(source.url, follow_redirects=True, timeout=settings.fetch_timeout)
                response.raise_for_status()
                data = response.content
                write_atomic(target, data)
                digest = content_hash(data)
                if digest == source.sha256:
                    report.fetched.append(source.file)
                    log(f"ok       {source.file} (downloaded)")
                else:
                    report.changed.append(source.file)
                    receipts[source.file] = {"sha256": digest, "url": source.url, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                    log(f"WARNING  {source.file}: downloaded bytes differ from the manifest (sha256 {digest[:12]}…); "
                        "kept, and the new hash recorded in " + str(receipts_path))
                continue
            except (httpx.HTTPError, OSError) as exc:
                problems.append(f"download failed: {type(exc).__name__}: {exc}")
        else:
            problems.append("no URL to download from")
        report.missing.append((source.file, "; ".join(problems)))
        log(f"MISSING  {source.file}: {'; '.join(problems)}")
    if receipts:
        receipts_path.write_text(json.dumps(receipts, indent=1))
    return report


def corpus_files(settings: Settings) -> dict[str, Path]:
    """Every ingestible file of the corpus, keyed by document id (its path below its corpus root)."""
    from assistant.load import is_supported

    files: dict[str, Path] = {}
    roots = [settings.corpus_dir, settings.fetched_dir]
    inside = [root.resolve() for root in roots]
    skip = {settings.corpus_manifest.resolve(), (settings.corpus_dir / "README.md").resolve()}
    for root in roots:
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if root == settings.corpus_dir and rel.parts and rel.parts[0] == settings.fetched_dir.name:
                continue
            if any(part.startswith(".") for part in rel.parts) or not path.is_file() or path.resolve() in skip:
                continue
            if not settings.follow_corpus_symlinks and not any(path.resolve().is_relative_to(r) for r in inside):
                # A link to a file outside the corpus would publish that file (e.g. a key) through the API.
                log.warning("skipping %s: a link to a file outside the corpus (ASSISTANT_FOLLOW_CORPUS_SYMLINKS=1 "
                            "indexes such links)", rel.as_posix())
                continue
            if path.name.endswith(".part") or not is_supported(path):
                if not path.name.endswith(".part") and path.name != RECEIPTS:
                    files.setdefault(rel.as_posix(), path)  # unsupported: reported by the sync, not silently skipped
                continue
            files.setdefault(rel.as_posix(), path)
    return files


def copy_into_corpus(settings: Settings, name: str, data: bytes) -> Path:
    target = settings.corpus_dir / name
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, data)
    return target


def remove_from_corpus(settings: Settings, doc_id: str) -> bool:
    removed = False
    for root in (settings.corpus_dir, settings.fetched_dir):
        path = root / doc_id
        if path.is_file():
            path.unlink()
            removed = True
    return removed


__all__ = ["Source", "read_manifest", "manifest_by_file", "fetch_sources", "corpus_files", "copy_into_corpus",
           "remove_from_corpus", "FetchReport"]
