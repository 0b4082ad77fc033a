"""The app served for tests: in this process (uvicorn in a thread, on the fake backend or a given model), or,
where a process is the point, as ``python app.py`` in a process of its own; and an API client that keeps
posting to it."""

import contextlib
import json
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from conftest import ROOT
from fakes import fake_moderator
from gradio_client import Client

from feedback.reviewers import Reviewers
from feedback.store import FeedbackStore
from playground.server import create_app
from playground.service import PlaygroundService


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving_in_thread(app):
    """``app`` served by uvicorn in a thread of this process on a free port; yields its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the in-process server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = server.force_exit = True  # open connections (a client's stream) are cut
        thread.join(timeout=10)


class PageClient(Client):
    """gradio_client's Client for an app served here over plain http. With nothing to verify it skips TLS
    verification, which would otherwise load the certificate store for every request (most of a call's time).
    Closing it ends its heartbeat stream without waiting: that stream notices only at the server's next
    heartbeat, and gradio_client's own close waits a second for it."""

    def __init__(self, url: str, **options):
        super().__init__(url, verbose=False, ssl_verify=False, **options)

    def close(self):
        self._kill_heartbeat.set()


def call_page(url: str, api_name: str, body: str) -> tuple[str, object]:
    """One page call sent raw, as a browser or curl sends it: ``body`` (JSON text with ``data``, the inputs) posted
    to /gradio_api/call/NAME, then its event stream read to the end; returns its last event ("complete" or
    "error") with that event's data."""
    with httpx.Client(base_url=url, timeout=120) as http:
        posted = http.post(f"gradio_api/call{api_name}", content=body, headers={"Content-Type": "application/json"})
        assert posted.status_code == 200, posted.text[:500]
        stream = http.get(f"gradio_api/call{api_name}/{posted.json()['event_id']}").text
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", stream, re.MULTILINE)
    event, data = next((event, data) for event, data in events if event in ("complete", "error"))
    return event, json.loads(data)


@dataclass
class App:
    """A playground served in this process: its URL, service and database file."""

    url: str
    service: PlaygroundService
    db_path: Path


def make_service(tmp_path: Path, moderator=None, **options) -> PlaygroundService:
    """A service on ``moderator`` (the fake one by default) with its own database and export folder."""
    (tmp_path / "exports").mkdir(parents=True, exist_ok=True)
    return PlaygroundService(moderator or fake_moderator(), FeedbackStore(tmp_path / "feedback.db"),
                             tmp_path / "exports", **options)


@contextlib.contextmanager
def running_in_process(tmp_path: Path, moderator=None, *, reviewers_file=None, record_api=True, app_options=None,
                       **options):
    """The whole app (page and API) on ``moderator`` served in this process; yields an :class:`App`.
    ``app_options`` go to ``create_app``, ``options`` to the service."""
    service = make_service(tmp_path, moderator, **options)
    reviewers = Reviewers(reviewers_file) if reviewers_file else None
    app = create_app(service, reviewers=reviewers, record_api=record_api, **(app_options or {}))
    with serving_in_thread(app) as url:
        yield App(url, service, tmp_path / "feedback.db")
    service.close()


@contextlib.contextmanager
def serving(command, ready_url, log_path):
    """The server that ``command`` starts (its output in ``log_path``); yields the process once
    ``ready_url`` answers, and stops it afterwards if it still runs."""
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(ready_url, timeout=2)
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"{command[1]} did not start: {Path(log_path).read_text()}") from None
                    time.sleep(0.3)
            yield server
        finally:
            if server.poll() is None:
                server.terminate()
            server.wait(timeout=30)


def app_command(model, db_path, port, *extra):
    """``python app.py`` on ``model`` (None: its default) and ``db_path``, as a reviewer starts it."""
    chosen = ["--model", str(model)] if model else []
    return [sys.executable, "app.py", *chosen, "--db", str(db_path), "--port", str(port), *extra]


@contextlib.contextmanager
def running_app(model, db_path, *extra):
    """``python app.py`` in its own process on a free port; yields its URL and the process once /healthz answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with serving(app_command(model, db_path, port, *extra), url + "healthz",
                 Path(db_path).with_suffix(".log")) as process:
        yield url, process


class ApiStream:
    """A client posting one new text at a time to /v1/moderations until stopped; keeps when each was answered."""

    def __init__(self, url, name):
        self.url, self.name = url, name
        self.stop = threading.Event()
        self.acked = {}  # text -> monotonic time of its answer

    def run(self):
        with httpx.Client(base_url=self.url, timeout=30) as http:
            for count in range(100_000):
                if self.stop.is_set():
                    return
                text = f"{self.name} api text {count}"
                try:
                    answer = http.post("v1/moderations", json={"input": text})
                except httpx.HTTPError:
                    return
                if answer.status_code == 200:
                    self.acked[text] = time.monotonic()


def stored_texts(db_path) -> set[str]:
    """The texts of every prediction in the database file, read with sqlite3."""
    connection = sqlite3.connect(db_path)
    try:
        return {row[0] for row in connection.execute("select text from predictions")}
    finally:
        connection.close()
