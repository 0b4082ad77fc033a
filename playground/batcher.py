"""Requests that arrive together share forward passes: a micro-batcher in front of a batch function."""

import queue
import threading
import time
from concurrent.futures import Future

from moderation.errors import Busy


class MicroBatcher:
    """Collects items from many threads and hands them to ``batch_fn`` together.

    A worker thread waits for a first item, takes every item already waiting, then waits up to ``max_wait``
    seconds for company only while the batch is smaller than the one before (so a lone caller never waits,
    and a crowd fills each batch up to ``max_batch_size``), and calls ``batch_fn(items, key) -> results``
    once for all waiting items submitted with the same ``key`` (items of different keys, such as two prompt templates,
    never share a call). Each caller of :meth:`submit` gets its own results back, or the exception its
    call raised. More than ``max_queue`` waiting submissions make :meth:`submit` raise :class:`Busy` at once.
    """

    def __init__(self, batch_fn, *, max_batch_size: int = 32, max_wait: float = 0.005, max_queue: int = 1024):
        self.batch_fn = batch_fn
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._worker = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._worker.start()

    @property
    def depth(self) -> int:
        """How many submissions wait for the worker."""
        return self._queue.qsize()

    def submit(self, items: list, key=None) -> list:
        """Results of ``batch_fn`` for ``items``, computed together with other callers' items of the same ``key``."""
        return self.enqueue(items, key).result()

    def enqueue(self, items: list, key=None) -> Future:
        """Like :meth:`submit`, without waiting: a future of the results (for callers that must not block)."""
        future: Future = Future()
        try:
            self._queue.put_nowait((list(items), key, future))
        except queue.Full:
            raise Busy("The moderation queue is full: retry in a moment.") from None
        return future

    def _run(self):
        previous = 1
        while True:
            batch = [self._queue.get()]
            size = len(batch[0][0])
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch_size:
                try:
                    if size < previous:
                        entry = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                    else:
                        entry = self._queue.get_nowait()
                except queue.Empty:
                    break
                batch.append(entry)
                size += len(entry[0])
            previous = size
            groups: dict = {}
            for entry in batch:
                groups.setdefault(entry[1], []).append(entry)
            for key, entries in groups.items():
                self._serve(key, entries)

    def _serve(self, key, entries):
        items = [item for entry_items, _, _ in entries for item in entry_items]
        try:
            results = self.batch_fn(items, key)
        except Exception as error:  # every waiting caller hears of the failure
            for _, _, future in entries:
                future.set_exception(error)
            return
        start = 0
        for entry_items, _, future in entries:
            future.set_result(results[start : start + len(entry_items)])
            start += len(entry_items)
