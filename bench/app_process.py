"""``python app.py`` in a process of its own on a free port, as the benchmarks and the tests start it: yielded once
``/healthz`` answers, stopped afterwards."""

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 300
"""How long an app may take to answer /healthz (the first start on an empty cache builds the demo model)."""
STOP_TIMEOUT_S = 30


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_app(model, db: Path, *extra: str, log: Path, timeout: float = START_TIMEOUT_S):
    """``python app.py`` on ``model`` (None: its default) and ``db`` (``extra``: more options), its output in
    ``log``: yields (its URL, the process) once /healthz answers; RuntimeError with the log when it ends or does not
    answer in ``timeout`` seconds. Afterwards it is stopped (SIGTERM, then SIGKILL if it lingers) if it still runs."""
    port = free_port()
    chosen = ["--model", str(model)] if model else []
    command = [sys.executable, str(ROOT / "app.py"), *chosen, "--db", str(db), "--port", str(port), *map(str, extra)]
    url = f"http://127.0.0.1:{port}/"
    with open(log, "w") as out:
        server = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(url + "healthz", timeout=2).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"app.py did not start:\n{Path(log).read_text()}") from None
                time.sleep(0.3)
        yield url, server
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
