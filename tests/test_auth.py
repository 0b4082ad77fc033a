"""Reviewers who log in: the reviewers file, the page and its API behind a login, the REST feedback routes."""

import base64
import io
import json
import urllib.error
import urllib.request

import pytest
import sqlite_utils
from servers import PageClient, running_in_process

from feedback.__main__ import main as feedback_main
from feedback.api_keys import add_api_key
from feedback.reviewers import Reviewers, load_reviewers
from moderation.labels import LABELS
from playground.server import main as app_main


@pytest.fixture
def add_reviewer(cli, monkeypatch):
    """``python -m feedback reviewers add NAME --file PATH`` with the password on its standard input."""

    def add(path, name, password):
        monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
        return cli(feedback_main, "reviewers", "add", name, "--file", path)

    return add


def get(url, credentials=None):
    request = urllib.request.Request(url)
    if credentials:
        token = base64.b64encode(":".join(credentials).encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture(scope="module")
def reviewers_file(tmp_path_factory):
    from feedback.reviewers import add_reviewer

    path = tmp_path_factory.mktemp("auth") / "reviewers.txt"
    add_reviewer(path, "ana", "correct horse battery")
    add_reviewer(path, "bo", "another long secret")
    return path


@pytest.fixture(scope="module")
def locked_app(reviewers_file, tmp_path_factory):
    with running_in_process(tmp_path_factory.mktemp("locked"), reviewers_file=reviewers_file) as app:
        yield app.url, app.db_path


def test_the_command_line_adds_reviewers(add_reviewer, tmp_path):
    path = tmp_path / "reviewers.txt"
    added = add_reviewer(path, "cy", "a long enough secret")
    assert added.returncode == 0 and f"Reviewer cy can now log in (file: {path})" in added.stderr
    assert Reviewers(path).check("cy", "a long enough secret")


def test_reviewers_file_holds_hashes_not_passwords(reviewers_file):
    content = reviewers_file.read_text()
    assert "correct horse battery" not in content and "another long secret" not in content
    assert set(load_reviewers(reviewers_file)) == {"ana", "bo"}
    reviewers = Reviewers(reviewers_file)
    assert reviewers.check("ana", "correct horse battery")
    assert not reviewers.check("ana", "another long secret")
    assert not reviewers.check("nobody", "correct horse battery")
    assert oct(reviewers_file.stat().st_mode & 0o777) == "0o600"


def test_changing_a_password_keeps_the_other_reviewers(add_reviewer, reviewers_file, tmp_path):
    path = tmp_path / "reviewers.txt"
    path.write_text(reviewers_file.read_text())
    assert add_reviewer(path, "bo", "a brand new secret").returncode == 0
    reviewers = Reviewers(path)
    assert reviewers.check("bo", "a brand new secret") and reviewers.check("ana", "correct horse battery")


@pytest.mark.parametrize("name, password, message", [
    ("ana", "short", "too short"),
    ("a:b", "long enough password", "Bad reviewer name"),
    ("  ", "long enough password", "Bad reviewer name"),
])
def test_bad_reviewers_are_refused(add_reviewer, tmp_path, name, password, message):
    run = add_reviewer(tmp_path / "reviewers.txt", name, password)
    assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "reviewers.txt").exists()


def test_page_and_its_api_need_a_login(locked_app):
    url, _ = locked_app
    with pytest.raises(Exception):
        PageClient(url)
    with pytest.raises(Exception):
        PageClient(url, auth=("ana", "wrong password"))


def test_a_verdict_records_the_logged_in_reviewer(locked_app):
    url, db_path = locked_app
    client = PageClient(url, auth=("ana", "correct horse battery"))
    label, _, _, prediction_id = client.predict("Shall we meet for coffee?", "score", api_name="/moderate")
    correct = next(name for name in LABELS if name != label["label"])
    saved = client.predict(prediction_id, correct, "", "somebody else", api_name="/flag")
    verdict_id = int(saved.split("#")[1].split()[0])
    assert sqlite_utils.Database(db_path)["verdicts"].get(verdict_id)["reviewer"] == "ana"


def test_the_queue_and_the_curator_name_the_logged_in_reviewer(locked_app):
    url, db_path = locked_app
    client = PageClient(url, auth=("bo", "another long secret"))
    _, _, _, prediction_id = client.predict("Is the library open on Sundays?", "score", api_name="/moderate")
    assert client.predict(prediction_id, "needs caution", "somebody else", api_name="/queue_label").startswith(
        "Saved verdict #")
    settled = client.predict("Is the library open on Sundays?", "casual", "somebody else", api_name="/set_final_label")
    assert settled.endswith("(set by bo).")
    verdicts = sqlite_utils.Database(db_path)["verdicts"]
    assert [row["reviewer"] for row in verdicts.rows_where("prediction_id = ?", [prediction_id])] == ["bo"]


def test_rest_feedback_routes_need_a_reviewer(locked_app):
    url, _ = locked_app
    for route in ("v1/feedback/export", "v1/feedback/stats"):
        status, body = get(url + route)
        assert status == 401 and "Log in" in json.loads(body)["error"]["message"]
        assert get(url + route, ("ana", "wrong password"))[0] == 401
    status, body = get(url + "v1/feedback/export?format=oig", ("bo", "another long secret"))
    assert status == 200
    assert all(json.loads(line)["text"].startswith("Input: ") for line in body.splitlines())
    status, body = get(url + "v1/feedback/stats", ("bo", "another long secret"))
    assert status == 200 and "verdicts" in json.loads(body)
    assert get(url + "v1/feedback/export?format=csv", ("bo", "another long secret"))[0] == 400


def test_moderation_api_stays_open_for_chat_bots(locked_app):
    url, _ = locked_app
    assert get(url + "v1/models")[0] == 200


@pytest.fixture
def run_app(cli):
    """``python app.py ARGS`` in this process, for the runs that stop before serving."""
    return lambda *args: cli(app_main, *args)


def test_other_addresses_need_auth_or_insecure(run_app, tmp_path):
    refused = run_app("--host", "0.0.0.0", "--db", str(tmp_path / "f.db"))
    assert refused.returncode == 2
    assert "--auth FILE" in refused.stderr and "--insecure" in refused.stderr
    assert not (tmp_path / "f.db").exists()
    warned = run_app("--host", "0.0.0.0", "--insecure", "--model", str(tmp_path / "missing"))
    assert "warning: serving 0.0.0.0 without logins" in warned.stderr
    assert warned.returncode == 2


def test_a_malformed_reviewers_file_stops_the_app(run_app, tmp_path):
    bad = tmp_path / "reviewers.txt"
    bad.write_text("ana:plaintext-password\n")
    run = run_app("--auth", str(bad), "--model", "demo")
    assert run.returncode == 2 and "reviewers.txt:1" in run.stderr and "Traceback" not in run.stderr


def test_a_public_host_without_api_keys_warns_that_rest_is_open(run_app, reviewers_file, tmp_path):
    def started(*args):  # the model is missing: the run stops once the options are checked
        run = run_app("--auth", reviewers_file, "--model", tmp_path / "missing", *args)
        assert run.returncode == 2
        return run.stderr

    warning = "warning: serving 0.0.0.0 without --api-keys: REST /v1/moderations is open to anyone who reaches it"
    assert f"{warning}, and each text they send is recorded." in started("--host", "0.0.0.0")
    assert f"{warning}. Make keys with 'python -m feedback api-keys add" in started("--host", "0.0.0.0",
                                                                                      "--no-record-api")
    keys = tmp_path / "keys.txt"
    add_api_key(keys, "chatbot")
    assert "without --api-keys" not in started("--host", "0.0.0.0", "--api-keys", keys)
    assert "without --api-keys" not in started("--host", "127.0.0.1")
