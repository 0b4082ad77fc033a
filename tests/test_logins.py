"""Logins that cannot stall the server: scrypt off the event loop, failed logins limited per name and address."""

import statistics
import threading
import time

import httpx
import pytest
from servers import running_in_process

from feedback.reviewers import add_reviewer
from playground.logins import FailedLogins

GUESSERS = 8
FLOOD_S = 1


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def reviewers_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("logins") / "reviewers.txt"
    add_reviewer(path, "ana", "correct horse battery")
    return path


def login(url, name, password):
    return httpx.post(url + "login", data={"username": name, "password": password}, timeout=60)


def test_failures_are_limited_per_name_and_per_address_in_a_sliding_window():
    clock = Clock()
    failed = FailedLogins(per_name=3, per_address=5, window=60, clock=clock)
    for _ in range(3):
        assert failed.retry_after("ana", "10.0.0.1") is None
        failed.failed("ana", "10.0.0.1")
        clock.now += 10
    assert failed.retry_after("ana", "10.0.0.1") == 30  # the first failure leaves the window at 1060
    assert failed.retry_after("ana", "10.0.0.2") == 30, "the name is held back from any address"
    assert failed.retry_after("bo", "10.0.0.1") is None
    failed.failed("bo", "10.0.0.1")
    failed.failed("cy", "10.0.0.1")
    assert failed.retry_after("dan", "10.0.0.1") == 30, "five failures from one address hold it back"
    assert failed.retry_after("dan", "10.0.0.9") is None
    clock.now += 31
    assert failed.retry_after("ana", "10.0.0.1") is None


def test_the_page_login_answers_429_with_when_to_retry(reviewers_file, tmp_path):
    limits = FailedLogins(per_name=3, per_address=100, window=600)
    with running_in_process(tmp_path, reviewers_file=reviewers_file, app_options={"failed_logins": limits}) as app:
        assert [login(app.url, "ana", f"guess {n}").status_code for n in range(3)] == [400, 400, 400]
        held = login(app.url, "ana", "correct horse battery")
        assert held.status_code == 429 and 590 <= int(held.headers["Retry-After"]) <= 600
        assert "Too many failed logins: try again in" in held.json()["detail"]
        basic = httpx.get(app.url + "v1/feedback/stats", auth=("ana", "correct horse battery"))
        assert basic.status_code == 429, "the REST login counts the same failures"
        assert login(app.url, "nobody", "anything at all").status_code == 400


@pytest.mark.slow
def test_healthz_stays_quick_while_8_clients_guess_passwords(reviewers_file, tmp_path):
    unlimited = FailedLogins(per_name=10**6, per_address=10**6)  # every guess runs scrypt
    with running_in_process(tmp_path, reviewers_file=reviewers_file, app_options={"failed_logins": unlimited}) as app:
        stop, guesses = threading.Event(), []

        def guess(number):
            with httpx.Client(timeout=60) as http:
                while not stop.is_set():
                    answer = http.post(app.url + "login", data={"username": f"ana{number % 2}", "password": "x" * 9})
                    guesses.append(answer.status_code)

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(GUESSERS)]
        for thread in threads:
            thread.start()
        latencies = []
        with httpx.Client(timeout=60) as http:
            deadline = time.monotonic() + FLOOD_S
            while time.monotonic() < deadline:
                start = time.perf_counter()
                assert http.get(app.url + "healthz").status_code == 200
                latencies.append(time.perf_counter() - start)
                time.sleep(0.02)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    p50 = statistics.median(latencies)
    print(f"\n{len(guesses)} wrong guesses in {FLOOD_S} s; /healthz p50 {p50 * 1000:.1f} ms ({len(latencies)} calls)")
    assert set(guesses) == {400} and len(guesses) >= GUESSERS
    assert p50 < 0.050
