"""One sync at a time per index: a lock file in embedded mode, a lease row in the Chroma server otherwise.

A file lock in ``index_dir`` cannot keep apart two machines that write to one Chroma server, so with
``chroma_url`` set the lock is a row in a small collection of that server (``<collection>-locks``):

* take: ``add()`` the row with a fresh token; Chroma ignores an ``add`` of an existing id, so this is a
  create-if-absent, and reading the row back says who holds it (the first writer in the server's log wins);
* hold: a heartbeat thread pushes the expiry forward every ``sync_lease_seconds / 3``;
* steal: a lease whose expiry has passed (its holder died without releasing) is deleted *conditionally*,
  ``delete(ids, where={"token": stale})``, so of two processes that both saw it stale only one removes it and
  the next ``add`` decides between them;
* release: the same conditional delete with our own token.

Expiry compares wall clocks of different machines: keep them in sync (NTP), and the lease long against the skew.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

from assistant.errors import Busy
from assistant.settings import Settings

LEASE_ID = "sync"
_POLL_S = 0.25


class SyncBusy(Busy, RuntimeError):
    """Another sync holds the index's lock (the API answers 503 + Retry-After with its own, path-free message)."""


def _busy(target: str, owner: str) -> SyncBusy:
    return SyncBusy(f"Another sync of {target} is running ({owner}); wait for it to finish, "
                    "or pass --wait to queue behind it.")


def _owner_label() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}, started {time.strftime('%H:%M:%S')}"


_held = threading.local()  # the locks this thread holds: an upload holds the lock across its sync and its move


@contextmanager
def sync_lock(settings: Settings, wait: float = 0.0, client=None) -> Iterator[None]:
    """Hold the index's sync lock for the block; ``SyncBusy`` if another sync holds it for more than ``wait`` s.

    Re-entrant within a thread: a sync inside a block that already holds the lock (an upload) does not wait for
    itself, with a Chroma lease as with the lock file."""
    key = (settings.chroma_url or "", settings.collection, str(settings.index_dir))
    held = _held.__dict__.setdefault("keys", {})
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    held[key] = 1
    try:
        with _acquire(settings, wait, client):
            yield
    finally:
        held.pop(key, None)


@contextmanager
def _acquire(settings: Settings, wait: float, client) -> Iterator[None]:
    if settings.chroma_url:
        if client is None:
            from assistant.store import make_client

            client = make_client(settings)
        with ChromaLease(client, settings.collection, settings.sync_lease_seconds,
                         target=f"{settings.chroma_url} ({settings.collection})").held(wait):
            yield
    else:
        with file_lock(settings, wait):
            yield


@contextmanager
def file_lock(settings: Settings, wait: float = 0.0) -> Iterator[None]:
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    owner_path = settings.index_dir / ".sync.owner"
    # One lock object per file in this process (is_singleton), so a thread that holds it may sync inside: an upload
    # keeps the lock from its sync until its file is in the corpus.
    lock = FileLock(str(settings.index_dir / ".sync.lock"), is_singleton=True)
    try:
        lock.acquire(timeout=wait)
    except Timeout:
        owner = owner_path.read_text().strip() if owner_path.is_file() else "another process"
        raise _busy(str(settings.index_dir), owner) from None
    try:
        owner_path.write_text(_owner_label())
        yield
    finally:
        lock.release()


class ChromaLease:
    """A lease row in ``<collection>-locks`` of a (shared) Chroma server; see the module docstring."""

    def __init__(self, client, collection: str, ttl: float, target: str = "the index"):
        self.collection = client.get_or_create_collection(f"{collection}-locks", embedding_function=None)
        self.ttl = ttl
        self.target = target
        self.token = uuid.uuid4().hex
        self.owner = _owner_label()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.lost = False  # set if the heartbeat finds the lease taken over (it had expired)

    def _holder(self) -> dict | None:
        got = self.collection.get(ids=[LEASE_ID], include=["metadatas"])
        return got["metadatas"][0] if got["ids"] else None

    def try_acquire(self) -> dict | None:
        """Take the lease if free or expired; None when taken, else the current holder's row."""
        holder = self._holder()
        if holder is not None and holder["expires"] < time.time():
            self.collection.delete(ids=[LEASE_ID], where={"token": holder["token"]})  # only that stale lease
            holder = None
        if holder is None:
            self.collection.add(ids=[LEASE_ID], embeddings=[[1.0]],
                                metadatas=[{"token": self.token, "owner": self.owner,
                                            "expires": time.time() + self.ttl}])
            holder = self._holder()
        return None if holder is not None and holder["token"] == self.token else holder

    def acquire(self, wait: float = 0.0) -> None:
        deadline = time.monotonic() + wait
        while True:
            holder = self.try_acquire()
            if holder is None:
                break
            if time.monotonic() >= deadline:
                raise _busy(self.target, holder.get("owner", "another process") if holder else "another process")
            time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))
        self._stop.clear()
        self._heartbeat = threading.Thread(target=self._beat, name="sync-lease-heartbeat", daemon=True)
        self._heartbeat.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                holder = self._holder()
                if holder is None or holder["token"] != self.token:
                    self.lost = True
                    return
                self.collection.update(ids=[LEASE_ID], metadatas=[{**holder, "expires": time.time() + self.ttl}])
            except Exception:  # noqa: BLE001 - a missed beat is retried; the lease outlives two of them
                continue

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
            self._heartbeat = None
        self.collection.delete(ids=[LEASE_ID], where={"token": self.token})

    @contextmanager
    def held(self, wait: float = 0.0) -> Iterator[ChromaLease]:
        self.acquire(wait)
        try:
            yield self
        finally:
            self.release()
