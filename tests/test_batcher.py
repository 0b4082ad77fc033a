"""Concurrent callers share forward passes and each gets its own result."""

import threading
import time

import pytest

from playground.batcher import Busy, MicroBatcher


def run_concurrently(count, work):
    results, errors = [None] * count, []
    barrier = threading.Barrier(count)

    def call(i):
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results, errors


def test_sixteen_callers_get_their_own_results_from_shared_passes(tiny_moderator):
    sizes = []

    def moderate(texts, settings):
        sizes.append(len(texts))
        return tiny_moderator.moderate(texts)

    batcher = MicroBatcher(moderate, max_batch_size=32, max_wait=0.05)
    texts = [f"message number {i} about topic {i * 7}" for i in range(16)]
    results, errors = run_concurrently(16, lambda i: batcher.submit([texts[i]]))
    assert not errors
    assert [r[0].text for r in results] == texts
    alone = tiny_moderator.moderate(texts)
    for (shared,), single in zip(results, alone):
        assert shared.label == single.label
        assert shared.scores == pytest.approx(single.scores, abs=1e-5)
    assert sum(sizes) == 16 and max(sizes) > 1


def test_one_caller_alone(tiny_moderator):
    batcher = MicroBatcher(lambda texts, key: tiny_moderator.moderate(texts), max_wait=0.002)
    (result,) = batcher.submit(["just me"])
    assert result.text == "just me"
    assert [r.text for r in batcher.submit(["a", "b", "c"])] == ["a", "b", "c"]


def test_items_of_different_keys_never_share_a_call():
    calls, release = [], threading.Event()

    def tag(items, key):
        calls.append((key, list(items)))
        release.wait(30)  # the first call holds the worker while the other items arrive together
        return [f"{key}:{item}" for item in items]

    batcher = MicroBatcher(tag, max_wait=0.2)
    futures = [batcher.enqueue([f"t{i}"], key="ab"[i % 2]) for i in range(6)]
    release.set()
    assert [future.result(timeout=30) for future in futures] == [[f"{'ab'[i % 2]}:t{i}"] for i in range(6)]
    assert all({item for item in items} <= {f"t{i}" for i in range(6) if "ab"[i % 2] == key} for key, items in calls)
    assert sorted(len(items) for _, items in calls) != [1] * 6, "same-key items arriving together share a call"


def test_a_failing_batch_reaches_its_callers_and_the_batcher_goes_on():
    def shout(items, key):
        if "boom" in items:
            raise ValueError("boom is not allowed")
        return [item.upper() for item in items]

    batcher = MicroBatcher(shout, max_wait=0.001)
    with pytest.raises(ValueError, match="boom"):
        batcher.submit(["boom"])
    assert batcher.submit(["fine"]) == ["FINE"]


def test_a_full_queue_answers_busy_at_once():
    release = threading.Event()
    started = threading.Event()

    def slow(items, key):
        started.set()
        release.wait(timeout=30)
        return items

    batcher = MicroBatcher(slow, max_wait=0, max_queue=1)
    first = threading.Thread(target=batcher.submit, args=(["first"],))
    first.start()
    started.wait(timeout=10)
    second = threading.Thread(target=batcher.submit, args=(["second"],))
    second.start()
    while batcher._queue.qsize() < 1:
        time.sleep(0.001)
    with pytest.raises(Busy, match="retry"):
        batcher.submit(["third"])
    release.set()
    first.join(timeout=10)
    second.join(timeout=10)


def resident_kib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4


@pytest.mark.slow
def test_memory_does_not_grow_over_hundreds_of_requests(tiny_moderator):
    batcher = MicroBatcher(lambda texts, key: tiny_moderator.moderate(texts), max_wait=0.001)
    texts = [f"request {i}: " + "some words " * (i % 7) for i in range(700)]
    for text in texts[:200]:
        batcher.submit([text])
    before = resident_kib()
    for text in texts[200:]:
        batcher.submit([text])
    grown_mib = (resident_kib() - before) / 1024
    assert grown_mib < 25, f"resident memory grew {grown_mib:.1f} MiB over 500 requests"
