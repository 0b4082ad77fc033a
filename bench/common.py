"""What the benchmarks share: the machine they measured on, GPU timing, and the options of an app to measure
(a running one, or one they start with :func:`bench.app_process.running_app`)."""

import argparse
import contextlib
import os
import platform
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import torch

from .app_process import running_app

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 300
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def machine(load_at_start: float) -> dict:
    """What the figures were measured on, with its 1-minute load average at the start and at the end."""
    cpu = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu,
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "cores": os.cpu_count(),
        "load_average": [load_at_start, os.getloadavg()[0]],
    }


def quiet_torch(threads: int | None) -> None:
    """Run torch on ``threads`` threads (its default when None), with transformers' logs and progress bars off."""
    import transformers

    if threads:
        torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


class PeakMemory:
    """The most memory a block of work takes above what was in use as it began, in MiB (``mib``, once it ends): on
    a GPU, torch's peak allocation; on the CPU, the process's resident memory, sampled every ``every`` seconds from
    ``/proc/self/statm`` (what the CPU allocator gave back to the system between samples is not seen)."""

    def __init__(self, every: float = 0.002):
        self.every = every
        self.mib: float | None = None
        self._done = threading.Event()

    def __enter__(self) -> "PeakMemory":
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._start = torch.cuda.memory_allocated()
        else:
            self._start = self._peak = _resident()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            self._done.set()
            self._sampler.join()
            peak = self._peak
        self.mib = (peak - self._start) / 2**20

    def _sample(self) -> None:
        while not self._done.wait(self.every):
            self._peak = max(self._peak, _resident())


def _resident() -> int:
    """This process's resident memory in bytes."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def sync():
    """Wait for queued GPU work, so that timers read finished work."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def add_app_options(parser: argparse.ArgumentParser) -> None:
    """--url and --db (a playground running on this machine, and its database file) or --model (the model of the
    app the bench starts itself)."""
    parser.add_argument("--url", help="a running playground, like http://127.0.0.1:7860/ (needs --db)")
    parser.add_argument("--model", default="demo", help="the model app.py starts with when no --url (default: demo)")
    parser.add_argument("--db", help="the server's SQLite file (default without --url: a temporary one)")


def check_app_options(parser: argparse.ArgumentParser, args: argparse.Namespace, needs_db: str) -> None:
    """Refuse --url without --db (which the bench reads or writes ``needs_db``), or on another machine."""
    if args.url and not args.db:
        parser.error(f"--url needs --db, the server's database file, {needs_db}")
    if args.url and urllib.parse.urlsplit(args.url).hostname not in LOCAL_HOSTS:
        parser.error(f"--url must be on {' or '.join(LOCAL_HOSTS)}")


def app_to_measure(args: argparse.Namespace, db: Path, log: Path):
    """The app of :func:`add_app_options`: the one running at ``--url``, or ``app.py`` on ``--model`` and ``db``, its
    output in ``log``. A context that yields (its URL, ending in a slash; its process, None for ``--url``)."""
    return contextlib.nullcontext((args.url.rstrip("/") + "/", None)) if args.url else running_app(args.model, db,
                                                                                                   log=log)
