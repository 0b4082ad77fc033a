"""The app served for tests: in this process (uvicorn in a thread, on the fake backend or a given model), or,
where a process is the point, as ``python app.py`` in a process of its own; an API client that keeps
posting to it, and clients that log in or send keys from a chosen address."""

import concurrent.futures
import contextlib
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fakes import fake_moderator
from gradio.utils import get_upload_folder
from gradio_client import Client

from feedback.reviewers import Reviewers
from feedback.store import FeedbackStore
from playground.scratch import ScratchFolder
from playground.server import create_app, uvicorn_options
from playground.service import PlaygroundService


@contextlib.contextmanager
def serving_in_thread(app, forwarded_allow_ips=""):
    """``app`` served by uvicorn in a thread of this process on a free port, as ``python app.py`` serves it; yields
    its URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, **uvicorn_options(forwarded_allow_ips)))
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


@dataclass
class App:
    """A playground served in this process: its URL, service and database file."""

    url: str
    service: PlaygroundService
    db_path: Path


def make_service(tmp_path: Path, moderator=None, **options) -> PlaygroundService:
    """A service on ``moderator`` (the fake one by default) with its own database and scratch folder (where the app
    keeps it: under Gradio's upload folder)."""
    database = tmp_path / "feedback.db"
    return PlaygroundService(moderator or fake_moderator(), FeedbackStore(database),
                             ScratchFolder(get_upload_folder(), database), **options)


@contextlib.contextmanager
def running_in_process(tmp_path: Path, moderator=None, *, reviewers_file=None, record_api=True, app_options=None,
                       forwarded_allow_ips="", **options):
    """The whole app (page and API) on ``moderator`` served in this process; yields an :class:`App`.
    ``app_options`` go to ``create_app``, ``forwarded_allow_ips`` to uvicorn, ``options`` to the service."""
    service = make_service(tmp_path, moderator, **options)
    reviewers = Reviewers(reviewers_file) if reviewers_file else None
    app = create_app(service, reviewers=reviewers, record_api=record_api, **(app_options or {}))
    with serving_in_thread(app, forwarded_allow_ips) as url:
        yield App(url, service, tmp_path / "feedback.db")
    service.close()


def call_page(url: str, api_name: str, *args, body: str | None = None, timeout: float = 60) -> tuple[str, object]:
    """A page call sent as raw HTTP, as any client can (``POST /gradio_api/call/<api_name>``, then its event
    stream), with ``args`` as its inputs, or ``body`` as the JSON text posted (which can say what Python's JSON
    cannot, like ``1e309``): ("complete", the outputs) or ("error", what the page said)."""
    base = f"{url}gradio_api/call{api_name}"
    with httpx.Client(timeout=timeout) as http:
        started = http.post(base, content=body if body is not None else json.dumps({"data": list(args)}),
                            headers={"Content-Type": "application/json"})
        assert started.status_code == 200, started.text[:500]
        stream = http.get(f"{base}/{started.json()['event_id']}").text
    events = re.findall(r"^event: (\w+)\ndata: (.*)$", stream, re.MULTILINE)
    event, data = next((event, data) for event, data in events if event in ("complete", "error"))
    data = json.loads(data)
    return event, (data.get("error") or "error") if event == "error" and isinstance(data, dict) else data


def upload(url: str, name: str, content: bytes, **options) -> httpx.Response:
    """``content`` uploaded to the page as a file named ``name`` (``options`` go to httpx, e.g. a transport)."""
    with httpx.Client(timeout=60, **options) as http:
        return http.post(url + "gradio_api/upload", files={"files": (name, content)})


def file_data(path: str) -> dict:
    """A page call's file, as the page and gradio_client send one: its path on the server, tagged as a file."""
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def file_endpoints(url: str) -> dict[str, list]:
    """Every api_name of the page that takes a file, with arguments for it (each input's default, or its example):
    found in the page's API info, so that an event added later is covered too."""
    client = PageClient(url)
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    client.close()
    found = {}
    for api_name, endpoint in endpoints.items():
        parameters = endpoint["parameters"]
        if any(parameter["python_type"]["type"] == "filepath" for parameter in parameters):
            found[api_name] = [None if parameter["python_type"]["type"] == "filepath" else
                               parameter["parameter_default"] if parameter["parameter_has_default"] else
                               parameter["example_input"] for parameter in parameters]
    return found


def with_file(arguments: list, file) -> list:
    """The arguments with ``file`` in place of each file."""
    return [file if argument is None else argument for argument in arguments]


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


KEYS_FOLLOWED_S = 5
"""How soon a running app must follow a change of its keys file ("within a few seconds")."""


def from_address(source: str = "127.0.0.1") -> httpx.Client:
    """An HTTP client whose connections come from ``source`` (any address of 127.0.0.0/8 reaches the server)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=source), timeout=60)


def log_in(http: httpx.Client, url: str, name: str, password: str, *, via: str = "page",
           headers: dict | None = None) -> httpx.Response:
    """A login through the page's /login, or through HTTP Basic on a REST feedback route (``via="basic"``)."""
    if via == "page":
        return http.post(url + "login", data={"username": name, "password": password}, headers=headers)
    return http.get(url + "v1/feedback/stats", auth=(name, password), headers=headers)


def moderate_with(url: str, authorization: str) -> httpx.Response:
    """``POST /v1/moderations`` of one text with the header ``Authorization: <authorization>``."""
    return httpx.post(url + "v1/moderations", json={"input": "hello"}, headers={"Authorization": authorization},
                      timeout=30)


def within(seconds: float, check) -> bool:
    """Whether ``check()`` comes true within ``seconds`` (it is asked every 50 ms)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stored_texts(db_path) -> set[str]:
    """The texts of every prediction in the database file, read with sqlite3."""
    connection = sqlite3.connect(db_path)
    try:
        return {row[0] for row in connection.execute("select text from predictions")}
    finally:
        connection.close()


def in_own_thread(call, *args):
    """``call(*args)`` on a thread of its own, for what starts an event loop (``asyncio.run``): this thread may hold
    one already, the browser tests' Playwright loop that lasts the whole session."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(call, *args).result()
