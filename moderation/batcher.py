"""Requests that arrive together share forward passes: a micro-batcher in front of a batch function."""

import queue
import threading
import time
from concurrent.futures import Future


class Busy(RuntimeError):
    """The queue is full: the caller should retry later."""


class MicroBatcher:
    """Collects items from many threads and hands them to ``batch_fn`` together.

    A worker thread waits for a first item, then for up to ``max_wait`` seconds (or until
    ``max_batch_size`` items) for company, and calls ``batch_fn(items) -> results`` once for all of
    them. Each caller of :meth:`submit` gets its own results back, or the exception the batch raised.
    More than ``max_queue`` waiting items make :meth:`submit` raise :class:`Busy` at once.
    """

    def __init__(self, batch_fn, *, max_batch_size: int = 32, max_wait: float = 0.005, max_queue: int = 1024):
        self.batch_fn = batch_fn
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._worker = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._worker.start()

    def submit(self, items: list) -> list:
        """Results of ``batch_fn`` for ``items``, computed together with other callers' items."""
        future: Future = Future()
        try:
            self._queue.put_nowait((list(items), future))
        except queue.Full:
            raise Busy("The moderation queue is full: retry in a moment.") from None
        return future.result()

    def _run(self):
        while True:
            batch = [self._queue.get()]
            size = len(batch[0][0])
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch_size:
                try:
                    entry = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                batch.append(entry)
                size += len(entry[0])
            self._serve(batch)

    def _serve(self, batch):
        items = [item for entry_items, _ in batch for item in entry_items]
        try:
            results = self.batch_fn(items)
        except Exception as error:  # every waiting caller hears of the failure
            for _, future in batch:
                future.set_exception(error)
            return
        start = 0
        for entry_items, future in batch:
            future.set_result(results[start : start + len(entry_items)])
            start += len(entry_items)
