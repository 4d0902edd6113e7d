"""The sync lock across machines: processes with different index folders share one real ``chroma run`` server."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from assistant.lock import SyncBusy, sync_lock
from tests.assistant.test_store_server import chroma_server  # noqa: F401 - the fixture: a real `chroma run`
from tests.conftest import REPO, stop_process

# A process on "another machine": its own index folder, the shared server; holds the lock for `hold` seconds.
_HOLDER = """
import sys, time
from assistant.lock import SyncBusy, sync_lock
from assistant.settings import Settings
index_dir, url, ttl, wait, hold = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
settings = Settings(index_dir=index_dir, chroma_url=url, sync_lease_seconds=ttl)
try:
    with sync_lock(settings, wait=wait):
        print("held", time.time(), flush=True)
        time.sleep(hold)
        print("releasing", time.time(), flush=True)
except SyncBusy as exc:
    print("busy", time.time(), exc, flush=True)
    sys.exit(3)
"""


def _start(index_dir, url, ttl=60.0, wait=0.0, hold=0.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _HOLDER, str(index_dir), url, str(ttl), str(wait), str(hold)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"})


def _wait_for_held(proc: subprocess.Popen) -> float:
    line = proc.stdout.readline()
    assert line.startswith("held"), line + proc.stderr.read()
    return float(line.split()[1])


def test_two_machines_sharing_a_server_never_sync_at_once(chroma_server, tmp_path):  # noqa: F811
    first = _start(tmp_path / "a" / "index", chroma_server, ttl=5, hold=20)
    try:
        first_held = _wait_for_held(first)
        time.sleep(6.5)  # past the 5 s lease: only the heartbeat keeps it
        busy = _start(tmp_path / "b" / "index", chroma_server)
        out, err = busy.communicate(timeout=60)
        assert busy.returncode == 3, out + err
        assert float(out.split()[1]) - first_held > 5
        assert f"Another sync of {chroma_server}" in out and f"pid {first.pid} on" in out and "--wait" in out

        queued = _start(tmp_path / "b" / "index", chroma_server, wait=60, hold=0)
        released = float(first.stdout.readline().split()[1])
        held = _wait_for_held(queued)
        assert held >= released
        assert queued.wait(timeout=60) == 0 and first.wait(timeout=60) == 0
    finally:
        stop_process(first)


def test_a_killed_holders_lease_expires(chroma_server, tmp_path):  # noqa: F811
    dead = _start(tmp_path / "a" / "index", chroma_server, ttl=5, hold=300)
    try:
        _wait_for_held(dead)
        dead.kill()  # no release, no heartbeat: the lease row stays until it expires
        dead.wait(timeout=30)
        killed_at = time.time()
        late = _start(tmp_path / "b" / "index", chroma_server, wait=60)
        held = _wait_for_held(late)
        assert late.wait(timeout=60) == 0
        assert 0 < held - killed_at < 30
    finally:
        stop_process(dead)


def test_in_process_lease_and_file_lock(chroma_server, make_settings, tmp_path):  # noqa: F811
    settings = make_settings(chroma_url=chroma_server)
    with sync_lock(settings):
        with pytest.raises(SyncBusy, match="is running"):
            with sync_lock(make_settings(tmp_path / "other", chroma_url=chroma_server)):
                pass
    with sync_lock(settings):  # released: free again
        pass
    # embedded mode keeps the lock file in index_dir
    local = make_settings(chroma_url=None)
    with sync_lock(local):
        assert (local.index_dir / ".sync.lock").exists()
        proc = _start(local.index_dir, "", wait=0)  # empty URL: embedded mode, same folder
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 3 and f"Another sync of {local.index_dir}" in out, out + err
