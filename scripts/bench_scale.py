"""The engine at scale, in this process: apply a generated 1,000-step plan
against `provision emulator` in another process, so that this process's CPU time and peak
memory are the orchestrator's alone. Run by scripts/bench.py, which reads the JSON it prints.
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_validate import generate

EMULATOR_SCALE = 0.001  # operation durations barely matter here: CPU and memory do
# The ledger's fsyncs cost no CPU; on a memory file system they do not stretch the run either.
SHM = Path("/dev/shm")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(port: int) -> subprocess.Popen[str]:
    provision = str(Path(sys.executable).with_name("provision"))
    proc = subprocess.Popen(
        [provision, "emulator", "--port", str(port), "--time-scale", str(EMULATOR_SCALE)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    if "serving on" not in proc.stdout.readline():  # printed once it listens
        proc.kill()
        raise SystemExit("the emulator did not start")
    return proc


def run(steps: int) -> dict[str, Any]:
    import orchestrator

    with tempfile.TemporaryDirectory(dir=SHM if SHM.is_dir() else None) as tmp:
        path = Path(tmp) / "scale.yaml"
        path.write_text(generate(steps))
        port = _free_port()
        server = _serve(port)
        try:
            dep = orchestrator.load(
                path, emulator=f"http://127.0.0.1:{port}", time_scale=EMULATOR_SCALE,
                state_dir=tmp, ledger=str(Path(tmp) / "ledger.json"),
            )
            cpu, wall = time.process_time(), time.perf_counter()
            result = dep.apply()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            ledger_bytes = (Path(tmp) / "ledger.json").stat().st_size
        finally:
            server.terminate()
            server.wait()
    return {
        "steps": steps,
        "ok": result.ok,
        "failures": [f"{f.step}: {f.message}" for f in result.failures][:3],
        "apply_cpu": cpu,
        "apply_wall": wall,
        "ledger_bytes": ledger_bytes,
        # Linux reports kibibytes.
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]))))
