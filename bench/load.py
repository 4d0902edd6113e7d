"""Load test of the chat service: N concurrent clients on loopback send a fixed number of /chat requests.

It reports throughput, p50/p95 latency and errors, and compares the throughput with the compute bound of this
machine: cores / CPU time of one request (the server process's CPU time over the measured run, from psutil, divided
by the number of requests). ``ratio = throughput / bound`` says how much of the machine the service turns into
answers (target ≥ 0.8, with zero errors).

By default it starts ``assistant serve`` on a free loopback port with the default settings (EmbeddingGemma) over a
*copy* of the index (so the run never touches the real one); ``--url`` targets a running server instead (give
``--server-pid`` or it looks the listening process up by port). Requests are stateless (``history: []``) so no
conversation grows during the run. Questions come from eval/questions.jsonl.

    .venv/bin/python bench/load.py --clients 4 --requests 40               # one process, embedded Chroma
    .venv/bin/python bench/load.py --clients 4 --requests 40 --workers 2   # 2 workers + a Chroma server

One server process cannot reach the target on 2 cores: most of a request's work is Python under the GIL (the
model's per-layer dispatch for a short query, BM25, tokenising), so one process keeps about 1.25 cores busy
(ratio ~0.6). Several workers over a Chroma server (``assistant serve --workers N`` with ASSISTANT_CHROMA_URL) use
the whole machine (ratio ~0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers import free_port  # noqa: E402 - the one free-port helper, shared with the tests


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Prints a summary and a JSON report.")
    parser.add_argument("--url", help="Target a running server (e.g. http://127.0.0.1:8000) instead of starting one")
    parser.add_argument("--server-pid", type=int, help="PID of the server at --url, for its CPU time")
    parser.add_argument("--clients", type=int, default=4, help="Concurrent clients (default 4)")
    parser.add_argument("--requests", type=int, default=40, help="Requests per client (default 40)")
    parser.add_argument("--warmup", type=int, default=4, help="Unmeasured requests first (default 4)")
    parser.add_argument("--questions", type=Path, default=REPO / "eval" / "questions.jsonl",
                        help="JSONL file with a 'question' field per line (default eval/questions.jsonl)")
    parser.add_argument("--index-dir", type=Path,
                        help="Index to serve when starting the server (default: the settings' index_dir); "
                             "it is copied to a temporary folder first unless --no-copy")
    parser.add_argument("--no-copy", action="store_true", help="Serve --index-dir in place instead of a copy")
    parser.add_argument("--workers", type=int, default=1,
                        help="Server worker processes (default 1). More than 1 also starts a Chroma server "
                             "(`chroma run`) over the index copy, as `assistant serve --workers` requires; its CPU "
                             "time counts as the service's")
    parser.add_argument("--no-keepalive", action="store_true",
                        help="A new connection per request (always so with --workers > 1, so that requests spread "
                             "over the workers instead of each client sticking to one)")
    parser.add_argument("--timeout", type=float, default=120.0, help="Per-request timeout in seconds")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="Seconds to wait for the server")
    parser.add_argument("--json-out", type=Path, help="Also write the JSON report to this file")
    return parser.parse_args(argv)


def load_questions(path: Path) -> list[str]:
    questions = [json.loads(line)["question"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not questions:
        raise SystemExit(f"no questions in {path}")
    return questions


def wait_ready(url: str, seconds: float, process: subprocess.Popen | None = None) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            response = httpx.get(f"{url}/health", timeout=5)
            if response.status_code == 200 and response.json().get("model_loaded"):
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} was not ready within {seconds:.0f} s")


def wait_workers(url: str, workers: int, seconds: float) -> None:
    """Until /health (fresh connections) has answered from ``workers`` different processes, all model-loaded."""
    seen: set[int] = set()
    deadline = time.monotonic() + seconds
    while len(seen) < workers and time.monotonic() < deadline:
        try:
            body = httpx.get(f"{url}/health", timeout=10).json()
            if body.get("model_loaded") and "pid" in body:
                seen.add(body["pid"])
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def find_server_pid(url: str) -> int | None:
    port = urlparse(url).port
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return conn.pid
    return None


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes and all their children (uvicorn workers, if any)."""
    procs = []
    for pid in pids:
        root = psutil.Process(pid)
        procs += [root, *root.children(recursive=True)]
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def own_cpu_seconds() -> float:
    """CPU time of this process alone (the clients), not of the server it started."""
    times = psutil.Process().cpu_times()
    return times.user + times.system


def busy_seconds() -> float:
    """CPU time the whole machine spent busy (all cores, all processes) since boot."""
    times = psutil.cpu_times()
    return sum(getattr(times, f) for f in ("user", "nice", "system", "irq", "softirq", "steal") if hasattr(times, f))


def start_server(args: argparse.Namespace, workdir: Path) -> tuple[list[subprocess.Popen], str, Path]:
    """Start ``assistant serve`` (and ``chroma run`` for several workers); the first process is the server."""
    from assistant.settings import Settings

    index_dir = args.index_dir or Settings().index_dir
    if not args.no_copy:
        copy = workdir / "index"
        shutil.copytree(index_dir, copy, ignore=shutil.ignore_patterns(".sync.lock", ".sync.owner"))
        index_dir = copy
    port = free_port()
    env = dict(os.environ, ASSISTANT_INDEX_DIR=str(index_dir), HF_HUB_OFFLINE="1", ANONYMIZED_TELEMETRY="False",
               PYTHONUNBUFFERED="1")
    bin_dir = Path(sys.executable).parent
    processes = []
    if args.workers > 1:
        chroma_port = free_port()
        chroma = subprocess.Popen([str(bin_dir / "chroma"), "run", "--path", str(index_dir), "--host", "127.0.0.1",
                                   "--port", str(chroma_port)], env=env, stdout=(workdir / "chroma.log").open("w"),
                                  stderr=subprocess.STDOUT)
        processes.append(chroma)
        env["ASSISTANT_CHROMA_URL"] = f"http://127.0.0.1:{chroma_port}"
        wait_chroma(env["ASSISTANT_CHROMA_URL"], 60, chroma)
    log_path = workdir / "server.log"
    command = [str(bin_dir / "assistant"), "serve", "--port", str(port), "--workers", str(args.workers),
               "--log-level", "warning"]
    server = subprocess.Popen(command, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, cwd=REPO)
    return [server, *processes], f"http://127.0.0.1:{port}", log_path


def wait_chroma(url: str, seconds: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the Chroma server at {url} did not start")


def run_clients(url: str, questions: list[str], clients: int, per_client: int, timeout: float,
                offset: int = 0, keepalive: bool = True) -> tuple[list[float], list[str], float]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(clients)

    def client(index: int) -> None:
        limits = httpx.Limits() if keepalive else httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=url, timeout=timeout, limits=limits) as http:
            start_gate.wait()
            for i in range(per_client):
                question = questions[(offset + index * per_client + i) % len(questions)]
                started = time.perf_counter()
                try:
                    response = http.post("/chat", json={"message": question, "history": []})
                    ok = response.status_code == 200 and "answer" in response.json()
                    problem = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                elapsed = time.perf_counter() - started
                with lock:
                    if problem:
                        errors.append(problem)
                    else:
                        latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    """The project's percentile rule (assistant/stats.py); NaN when there is nothing to measure."""
    from assistant.stats import percentile as shared

    return shared(values, q, empty=float("nan"))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    questions = load_questions(args.questions)
    processes: list[subprocess.Popen] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        if args.url:
            url, pid = args.url.rstrip("/"), args.server_pid or find_server_pid(args.url)
            pids = [pid] if pid else []
            health = wait_ready(url, args.startup_timeout)
        else:
            processes, url, log_path = start_server(args, workdir)
            print(f"starting the server at {url} (log: {log_path}) ...", file=sys.stderr)
            try:
                health = wait_ready(url, args.startup_timeout, processes[0])
                if args.workers > 1:  # every worker loaded: wait until /health answers from as many pids
                    wait_workers(url, args.workers, args.startup_timeout)
            except (RuntimeError, TimeoutError):
                print(log_path.read_text()[-3000:], file=sys.stderr)
                raise
            pids = [p.pid for p in processes]
        if not health.get("passages"):
            print("warning: the server's index is empty; answers will all be abstentions", file=sys.stderr)
        if args.warmup:
            run_clients(url, questions, args.clients, max(1, args.warmup // args.clients), args.timeout,
                        offset=len(questions) // 2, keepalive=False)

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        cpu_before = cpu_seconds(pids) if pids else None
        machine_before, me_before = busy_seconds(), own_cpu_seconds()
        keepalive = not args.no_keepalive and args.workers <= 1
        latencies, errors, wall = run_clients(url, questions, args.clients, args.requests, args.timeout,
                                              keepalive=keepalive)
        cpu_after = cpu_seconds(pids) if pids else None
        machine_after, me_after = busy_seconds(), own_cpu_seconds()

        total = args.clients * args.requests
        throughput = len(latencies) / wall if wall > 0 else 0.0
        report: dict = {
            "url": url, "model": health.get("model"), "passages": health.get("passages"),
            "workers": args.workers if not args.url else None, "clients": args.clients, "requests": total, "ok": len(latencies), "errors": len(errors),
            "seconds": round(wall, 3), "throughput_rps": round(throughput, 3),
            "latency_p50_s": round(percentile(latencies, 50), 4), "latency_p95_s": round(percentile(latencies, 95), 4),
            "latency_mean_s": round(statistics.fmean(latencies), 4) if latencies else None,
            "cores": cores,
        }
        if cpu_before is not None and total:
            server_cpu = cpu_after - cpu_before
            per_request = server_cpu / total
            bound = cores / per_request if per_request > 0 else float("inf")
            report.update({"server_cpu_s": round(server_cpu, 3), "cpu_per_request_s": round(per_request, 4),
                           "bound_rps": round(bound, 3), "ratio": round(throughput / bound, 3)})
            # The machine may be shared: CPU that neither the server nor these clients used went to other processes,
            # and the cores left over are what the server could have had.
            clients_cpu = me_after - me_before
            others = max(0.0, (machine_after - machine_before) - server_cpu - clients_cpu)
            available = max(cores - others / wall, 1e-9) if wall > 0 else cores
            bound_available = available / per_request if per_request > 0 else float("inf")
            report.update({"clients_cpu_s": round(clients_cpu, 3), "other_processes_cpu_s": round(others, 3),
                           "cores_left_by_other_processes": round(available, 2),
                           "bound_available_rps": round(bound_available, 3),
                           "ratio_available": round(throughput / bound_available, 3)})
        else:
            report.update({"server_cpu_s": None, "cpu_per_request_s": None, "bound_rps": None, "ratio": None})
        if errors:
            report["first_errors"] = errors[:5]

        print(f"{total} requests from {args.clients} clients in {wall:.2f} s: {throughput:.2f} req/s, "
              f"p50 {report['latency_p50_s'] * 1000:.0f} ms, p95 {report['latency_p95_s'] * 1000:.0f} ms, "
              f"errors {len(errors)}")
        if report["bound_rps"] is not None:
            print(f"server CPU {report['server_cpu_s']:.2f} s = {report['cpu_per_request_s'] * 1000:.0f} ms/request; "
                  f"compute bound {cores} cores / that = {report['bound_rps']:.2f} req/s; "
                  f"ratio throughput/bound {report['ratio']:.2f} (target >= 0.8)")
            if report["other_processes_cpu_s"] > 0.1 * cores * wall:
                print(f"note: other processes used {report['other_processes_cpu_s']:.1f} CPU-s during the run "
                      f"(~{cores - report['cores_left_by_other_processes']:.2f} cores); against the "
                      f"{report['cores_left_by_other_processes']:.2f} cores left, the bound is "
                      f"{report['bound_available_rps']:.2f} req/s and the ratio {report['ratio_available']:.2f}")
        else:
            print("server CPU time unknown (pass --server-pid): no compute bound")
        print(json.dumps(report, indent=1, ensure_ascii=False))
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        return 0 if not errors else 1
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
