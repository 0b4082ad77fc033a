"""The page's files, on a real server in this process: a page call may name only a regular file that this server
received as an upload (anything else is refused before it is read, so no call can read the server's files or
stall it); uploads are bounded per client address and per server, and each is removed once the call that used it
ends. The scratch folder's life (swept within the hour, removed at shutdown and after a kill) is tested in
test_exports.py, test_app.py and test_crash.py; every path an attacker might name is in the hostile corpus."""

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest
from conftest import ROOT
from gradio.utils import get_upload_folder
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from servers import PageClient, call_page, file_data, file_endpoints, running_in_process, upload, with_file

from playground.scratch import ScratchFolder, runs_folder
from playground.uploads import UploadRefused, Uploads

NOT_UPLOADED = "not a file uploaded to this server. Upload the file through the page"
SECRET = "the reviewers' password hashes: scrypt$16384$8$1$c2FsdA$aGFzaA"


def files_named(name: str) -> list[str]:
    """The files called ``name`` anywhere in Gradio's upload folder (where every server keeps its uploads)."""
    return [os.path.join(folder, name) for folder, _, files in os.walk(get_upload_folder()) if name in files]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with running_in_process(tmp_path_factory.mktemp("uploads")) as app:
        yield app


def test_a_page_call_naming_a_file_of_the_server_reads_nothing(app, tmp_path):
    secret = tmp_path / "reviewers-secret.txt"
    secret.write_text(SECRET + "\n")
    secret.chmod(0o600)
    endpoints = file_endpoints(app.url)
    assert {"/batch", "/evaluate"} <= set(endpoints)
    for api_name, arguments in endpoints.items():
        event, message = call_page(app.url, api_name, *with_file(arguments, file_data(str(secret))))
        assert event == "error" and NOT_UPLOADED in message, (api_name, message)
        assert "scrypt" not in message and str(secret) not in message
    client = PageClient(app.url)  # gradio_client uploads a local file (that is a real upload), but sends a URL on
    for api_name, arguments in endpoints.items():
        with pytest.raises(AppError, match=NOT_UPLOADED):
            client.predict(*with_file(arguments, handle_file(f"https://example.com/{secret.name}")),
                           api_name=api_name)
    client.close()
    assert files_named(secret.name) == [], "a copy of the secret file is in the upload folder"
    assert httpx.get(f"{app.url}gradio_api/file={secret}").status_code == 403


@pytest.mark.parametrize("kind", ["/dev/zero", "fifo", "link to /dev/zero", "folder"])
def test_a_file_that_never_ends_is_refused_at_once_and_the_server_keeps_answering(app, kind):
    uploads = app.service.scratch.uploads
    planted = uploads / f"planted-{kind.replace('/', '-')}"
    if kind == "fifo":
        os.mkfifo(planted)
    elif kind == "link to /dev/zero":
        planted.symlink_to("/dev/zero")
    elif kind == "folder":
        planted.mkdir()
    path = "/dev/zero" if kind == "/dev/zero" else str(planted)
    latencies, done = [], threading.Event()

    def poll():
        with httpx.Client(base_url=app.url, timeout=5) as http:
            while not done.is_set():
                started = time.monotonic()
                assert http.get("healthz").status_code == 200
                latencies.append(time.monotonic() - started)
                time.sleep(0.005)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        for api_name, arguments in file_endpoints(app.url).items():
            event, message = call_page(app.url, api_name, *with_file(arguments, file_data(path)), timeout=10)
            assert event == "error" and NOT_UPLOADED in message, (api_name, message)
        time.sleep(0.2)  # and after
    finally:
        done.set()
        poller.join(timeout=10)
    # the server shares this process (and a busy machine) with the test: a lone answer may come late, a blocked
    # event loop would not answer at all
    slowest = sorted(latencies)[int(0.9 * len(latencies)):]
    assert len(latencies) > 10 and slowest[0] < 0.1 and slowest[-1] < 1, f"/healthz took {slowest} s"


def uploaded_bytes(folder) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_uploads_past_a_clients_share_are_refused_and_the_folder_stays_within_it(tmp_path):
    rows = "".join(f"text {n} of an upload, long enough to fill it {'x' * 60}\n" for n in range(900)).encode()
    assert 90_000 < len(rows) < 100_000
    with running_in_process(tmp_path, app_options={"max_upload": 100_000, "max_uploads": 1_000_000}) as app:
        folder, share = app.service.scratch.uploads, 250_000
        answers = [upload(app.url, f"rows-{n}.txt", rows) for n in range(6)]
        assert [answer.status_code for answer in answers] == [200, 200, 429, 429, 429, 429]
        refusal = answers[2].json()["error"]["message"]
        assert refusal.startswith("Your uploads would exceed 250,000 bytes, the most one client may keep")
        assert answers[2].headers["Retry-After"]
        assert uploaded_bytes(folder) <= share
        event, (_, summary, *_) = call_page(app.url, "/batch", file_data(answers[0].json()[0]), "jsonl", False, "")
        assert event == "complete" and summary.startswith("900 of 900 rows labelled")
        assert upload(app.url, "rows-again.txt", rows).status_code == 200, "the upload used by a call freed room"
        assert uploaded_bytes(folder) <= share


def test_uploads_from_many_addresses_stop_at_the_servers_limit(tmp_path):
    with running_in_process(tmp_path, app_options={"max_upload": 100_000, "max_uploads": 1_000_000}) as app:
        statuses = []
        for client in range(2, 8):  # from 127.0.0.2 to 127.0.0.7, two uploads each: within each one's share
            transport = httpx.HTTPTransport(local_address=f"127.0.0.{client}")
            for number in range(2):
                answer = upload(app.url, f"rows-{client}-{number}.txt", f"{client} {number}\n".encode() * 22_000,
                                transport=transport)
                statuses.append(answer.status_code)
        assert statuses == [200] * 11 + [429]
        assert "(--max-uploads), and it is full" in answer.json()["error"]["message"]
        assert uploaded_bytes(app.service.scratch.uploads) <= 1_000_000


def test_an_upload_counts_until_the_sweeper_has_removed_it(tmp_path):
    now = [0.0]
    uploads = Uploads(tmp_path, max_total=4 * 10_000, max_age=3600, clock=lambda: now[0])
    stored = tmp_path / "4f2a" / "rows.txt"
    stored.parent.mkdir()
    stored.write_bytes(b"x" * 9_000)
    uploads.admit("127.0.0.2", 9_500)
    uploads.received("127.0.0.2", 9_500, [str(stored)])
    with pytest.raises(UploadRefused, match="Your uploads would exceed 10,000 bytes"):
        uploads.admit("127.0.0.2", 2_000)
    uploads.admit("127.0.0.3", 10_000)  # another address has a share of its own
    now[0] = 3600.5  # an hour on, the sweeper has removed it
    uploads.admit("127.0.0.2", 2_000)


def multipart(*files: tuple[str, bytes], boundary: str = "hostile-boundary"):
    """A multipart body of ``files``, streamed in chunks without a Content-Length; its headers."""
    def chunks():
        for name, content in files:
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                   "Content-Type: text/plain\r\n\r\n").encode()
            for start in range(0, len(content), 16_384):
                yield content[start:start + 16_384]
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return chunks(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_a_used_upload_is_removed_and_a_cut_one_leaves_nothing(tmp_path):
    rows, gold = tmp_path / "rows.csv", tmp_path / "gold.jsonl"
    rows.write_text("text\nfirst\nsecond\n")
    gold.write_text('{"text": "fine", "label": "casual"}\n')
    with running_in_process(tmp_path / "server", app_options={"max_upload": 100_000}) as app:
        folder = app.service.scratch.uploads
        client = PageClient(app.url)
        client.predict(handle_file(str(rows)), "csv", False, api_name="/batch")
        client.predict("a file", handle_file(str(gold)), "score", api_name="/evaluate")
        with pytest.raises(AppError, match="Invalid file type"):  # refused, but used all the same
            client.predict("a file", handle_file(str(rows)), "score", api_name="/evaluate")
        assert list(folder.iterdir()) == []
        client.close()
        stored = upload(app.url, "rows.csv", rows.read_bytes()).json()[0]
        assert call_page(app.url, "/batch", file_data(stored), "jsonl", False, "")[0] == "complete"
        event, message = call_page(app.url, "/batch", file_data(stored), "jsonl", False, "")
        assert event == "error" and message.endswith("that upload is no longer on the server (an upload serves one "
                                                     "call, and any upload is removed within the hour): upload the "
                                                     "file again.")
        one = b"a text to label\n" * 5900  # 94.4 kB: under the limit alone, not twice (413 as it streams in)
        body, headers = multipart(("a.txt", one), ("b.txt", one))
        assert httpx.post(app.url + "gradio_api/upload", content=body, headers=headers).status_code == 413
        assert list(folder.iterdir()) == [], "a cut upload left its partial file"


def test_gradio_offers_no_deep_links_which_would_write_to_the_upload_folder(app):
    client = PageClient(app.url)
    client.predict({"headers": ["text", "label"], "data": [["hi", "casual"]]}, "needs caution",
                   api_name="/set_prompt")
    answer = httpx.get(f"{app.url}gradio_api/deep_link", params={"session_hash": client.session_hash})
    client.close()
    assert answer.status_code == 404
    assert not (app.service.scratch.uploads / "deep_links").exists()


def test_a_killed_servers_scratch_folder_is_removed_by_the_next_start(tmp_path):
    database = tmp_path / "feedback.db"
    killed = subprocess.Popen(
        [sys.executable, "-c", ("import time; from playground.scratch import ScratchFolder; "
                                f"scratch = ScratchFolder({str(tmp_path)!r}, {str(database)!r}); "
                                "(scratch.uploads / 'rows.csv').write_text('text'); print(scratch.folder, flush=True); "
                                "time.sleep(60)")],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    folder = killed.stdout.readline().strip()
    alive = ScratchFolder(tmp_path, database)
    assert os.path.exists(folder), "a running server's folder was swept"
    killed.kill()
    killed.wait()
    again = ScratchFolder(tmp_path, database)
    assert not os.path.exists(folder) and alive.folder.exists()
    assert sorted(path.name for path in runs_folder(tmp_path, database).iterdir()) == sorted(
        [".lock", alive.folder.name, again.folder.name])
    alive.close()
    again.close()
    assert not runs_folder(tmp_path, database).exists()
