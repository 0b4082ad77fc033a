"""Logins that cannot stall the server nor lock a reviewer out: scrypt off the event loop, tries limited per name
from one address and per address, with growing waits, counted before the password is checked, and the client's
address forwarded only by the proxies named in --forwarded-allow-ips."""

import statistics
import threading
import time
from collections import Counter

import httpx
import pytest
from servers import from_address, log_in, running_in_process
from starlette.exceptions import HTTPException

from feedback.reviewers import add_reviewer
from playground.logins import LoginLimiter

GUESSERS = 8
FLOOD_S = 1
SIMULTANEOUS = 64
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def reviewers_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("logins") / "reviewers.txt"
    add_reviewer(path, "ana", PASSWORD)
    return path


def tried(limiter, name, address, correct=False):
    """What a try gets: "checked" (the password was checked, and was wrong), "in", or the seconds to wait."""
    try:
        return "in" if limiter.check(name, address, lambda: correct) else "checked"
    except HTTPException as held:
        assert held.status_code == 429
        return int(held.headers["Retry-After"])


def test_tries_are_limited_per_name_from_an_address_with_growing_waits():
    clock = Clock()
    limiter = LoginLimiter(per_name=3, per_address=100, first_wait=10, max_wait=35, forget_after=600, clock=clock)
    assert [tried(limiter, "ana", "10.0.0.66") for _ in range(4)] == ["checked"] * 3 + [10]
    assert tried(limiter, "ana", "10.0.0.1", correct=True) == "in", "a stranger's guesses never lock ana out"
    clock.now += 10
    assert tried(limiter, "ana", "10.0.0.66") == "checked", "past the limit, one try once the wait is over"
    assert tried(limiter, "ana", "10.0.0.66") == 20, "and each failure doubles the wait"
    clock.now += 20
    assert [tried(limiter, "ana", "10.0.0.66"), tried(limiter, "ana", "10.0.0.66", correct=True)] == ["checked", 35]
    clock.now += 35
    assert tried(limiter, "ana", "10.0.0.66", correct=True) == "in"
    assert [tried(limiter, "ana", "10.0.0.66") for _ in range(4)] == ["checked"] * 3 + [10], "a login clears them"


def test_tries_are_limited_per_address_and_forgotten_in_time():
    clock = Clock()
    limiter = LoginLimiter(per_name=3, per_address=5, first_wait=10, forget_after=600, clock=clock)
    assert [tried(limiter, f"name{n}", "10.0.0.66") for n in range(6)] == ["checked"] * 5 + [10]
    assert tried(limiter, "ana", "10.0.0.66", correct=True) == 10, "the address is held back, whatever the name"
    assert tried(limiter, "name0", "10.0.0.1") == "checked"
    clock.now += 599
    assert tried(limiter, "ana", "10.0.0.66") == "checked"
    clock.now += 601
    assert [tried(limiter, f"name{n}", "10.0.0.66") for n in range(6)] == ["checked"] * 5 + [10], "forgotten"


def test_a_stranger_never_locks_a_reviewer_out_of_the_page_or_rest(reviewers_file, tmp_path):
    with running_in_process(tmp_path, reviewers_file=reviewers_file) as app:
        with from_address("127.0.0.2") as stranger:
            assert [log_in(stranger, app.url, "ana", f"guess {n}").status_code for n in range(5)] == [400] * 5
            with from_address("127.0.0.1") as ana:
                assert log_in(ana, app.url, "ana", PASSWORD).status_code == 200
                assert log_in(ana, app.url, "ana", PASSWORD, via="basic").status_code == 200
            held = log_in(stranger, app.url, "ana", PASSWORD)
            assert held.status_code == 429 and held.headers["Retry-After"] == "10"
            assert "Too many failed logins: try again in 10 seconds." in held.json()["detail"]
            basic = log_in(stranger, app.url, "ana", PASSWORD, via="basic")
            assert basic.status_code == 429, "the REST login is held back by the same limiter"


def test_simultaneous_guesses_check_no_more_passwords_than_the_limit(reviewers_file, tmp_path):
    with running_in_process(tmp_path, reviewers_file=reviewers_file) as app:
        answers, start = [], threading.Barrier(SIMULTANEOUS)

        def guess(number):
            with from_address("127.0.0.3") as http:
                start.wait()
                answers.append(log_in(http, app.url, "ana", f"guess {number}").status_code)

        threads = [threading.Thread(target=guess, args=(n,)) for n in range(SIMULTANEOUS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert Counter(answers) == {400: 5, 429: SIMULTANEOUS - 5}, "400: a password checked; 429: held back"
        with from_address("127.0.0.1") as ana:
            assert log_in(ana, app.url, "ana", PASSWORD).status_code == 200


def test_a_forwarded_address_is_believed_only_from_a_named_proxy(reviewers_file, tmp_path):
    with running_in_process(tmp_path, reviewers_file=reviewers_file) as app, from_address() as http:
        spoofed = [log_in(http, app.url, f"name{n}", "wrong password", headers={"X-Forwarded-For": f"10.9.0.{n}"})
                   for n in range(21)]
        assert [answer.status_code for answer in spoofed] == [400] * 20 + [429], "20 failures from one address"
    proxied = tmp_path / "proxied"
    with running_in_process(proxied, reviewers_file=reviewers_file, forwarded_allow_ips="127.0.0.1") as app:
        with from_address() as proxy:
            guesses = [log_in(proxy, app.url, "ana", f"guess {n}", headers={"X-Forwarded-For": "203.0.113.7"})
                       for n in range(6)]
            assert [answer.status_code for answer in guesses] == [400] * 5 + [429]
            reviewer = log_in(proxy, app.url, "ana", PASSWORD, headers={"X-Forwarded-For": "198.51.100.2"})
            assert reviewer.status_code == 200
        with from_address("127.0.0.2") as stranger:
            forged = [log_in(stranger, app.url, "ana", f"guess {n}", headers={"X-Forwarded-For": f"10.9.0.{n}"})
                      for n in range(6)]
            assert [answer.status_code for answer in forged] == [400] * 5 + [429], "127.0.0.2 is no proxy"


@pytest.mark.slow
def test_healthz_stays_quick_while_8_clients_guess_passwords(reviewers_file, tmp_path):
    unlimited = LoginLimiter(per_name=10**6, per_address=10**6)  # every guess runs scrypt
    with running_in_process(tmp_path, reviewers_file=reviewers_file, app_options={"login_limiter": unlimited}) as app:
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


def test_forwarded_allow_ips_takes_addresses_and_networks_only(cli):
    from playground.server import main, parse_args

    assert parse_args([]).forwarded_allow_ips == "", "no proxy is believed by default"
    assert parse_args(["--forwarded-allow-ips", "10.0.0.5, 10.1.0.0/16,::1"]).forwarded_allow_ips
    refused = cli(main, "--forwarded-allow-ips", "10.0.0.5,proxy.internal")
    assert refused.returncode == 2 and "'proxy.internal' is no IP address or network" in refused.stderr
