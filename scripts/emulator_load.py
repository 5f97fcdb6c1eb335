"""Load on the emulator: GETs per second it serves, and its memory with many stored resources.

    python scripts/emulator_load.py [--resources 10000] [--seconds 5] [--clients 32]

The emulator runs in a separate process (`provision emulator`), so the load generator's own
CPU is not counted against it; the clients are real google-cloud-compute clients on a thread
pool, as the orchestrator's workers are. Prints one table.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    # Bounded: the server starts in well under a second; give up after 30 s.
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit("the emulator exited during start-up")
        try:
            requests.get(f"{url}/_emulator/requests/counts", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("the emulator did not start within 30 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()

    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "emulator", "--port", str(port),
         "--time-scale", "0.0001"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        _wait_up(url, proc)
        idle = _rss_mib(proc.pid)
        options = ClientOptions(api_endpoint=f"{url}/compute")

        def client() -> compute_v1.NetworksClient:
            return compute_v1.NetworksClient(credentials=AnonymousCredentials(),
                                              client_options=options)

        def insert(i: int) -> None:
            client().insert_unary(request={
                "project": f"load-{i % 50}",
                "network_resource": {"name": f"net-{i}", "auto_create_subnetworks": False},
            })

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            list(pool.map(insert, range(args.resources)))
        insert_rate = args.resources / (time.perf_counter() - started)
        # Let every insert operation finish (10 s simulated at this scale) before measuring.
        client().get(project="load-0", network="net-0")
        stored = _rss_mib(proc.pid)

        deadline = time.perf_counter() + args.seconds
        clients = [client() for _ in range(args.clients)]

        def reads(k: int) -> int:
            n = 0
            while time.perf_counter() < deadline:
                i = (k * 7919 + n) % args.resources
                clients[k].get(project=f"load-{i % 50}", network=f"net-{i}")
                n += 1
            return n

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            total = sum(pool.map(reads, range(args.clients)))
        elapsed = time.perf_counter() - started
        peak = _rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    print(f"machine: {os.cpu_count()} cores; emulator in its own process; "
          f"{args.clients} client threads (google-cloud-compute)")
    print(f"{'measure':<34}{'value':>12}")
    print(f"{'inserts per second':<34}{insert_rate:>12.0f}")
    print(f"{'GETs per second':<34}{total / elapsed:>12.0f}")
    print(f"{'RSS idle (MiB)':<34}{idle:>12.1f}")
    label = f"RSS with {args.resources} resources (MiB)"
    print(f"{label:<34}{stored:>12.1f}")
    print(f"{'RSS after the GET load (MiB)':<34}{peak:>12.1f}")


if __name__ == "__main__":
    main()
