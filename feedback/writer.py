"""Predictions recorded off the request path: one writer thread commits whatever is queued in one transaction.

A caller hands over its predictions and goes on; the writer takes everything handed over within ``linger``
seconds of the first (up to ``max_batch`` predictions), commits it in one transaction (one sync to disk for
the lot instead of one per request), and repeats.
The queue is bounded: when the writer falls behind, :meth:`PredictionWriter.add` waits for room, so the
requests slow down instead of memory growing. :meth:`PredictionWriter.close` commits what is still queued.

Durability: a prediction handed over is on disk once its batch commits, within ``linger`` seconds and the
time of one commit; if the process dies in between, the last batch is lost, and so is a batch that fails to
commit (a full disk): ``lost`` counts those, and the store's ``failure`` says why until a write commits again.
While it is set, the writer checks every ``check_every`` seconds whether the store can be written again, so that
the failure clears once space is freed, even when nothing else writes. Verdicts never go through here: they are
committed before they are acknowledged.
"""

import logging
import queue
import threading
import time

from .store import FeedbackStore

log = logging.getLogger("feedback.writer")

_STOP, _NOW = object(), object()
_MARKERS = (_STOP, _NOW)
"""Hand-overs that are no predictions: stop the writer, or commit at once."""


class PredictionWriter:
    """One thread that records queued predictions in :class:`FeedbackStore`, a batch per transaction."""

    def __init__(self, store: FeedbackStore, *, max_queue: int = 1024, max_batch: int = 512, linger: float = 0.05,
                 check_every: float = 2.0):
        self.store = store
        self.max_batch = max_batch
        self.linger = linger
        self.check_every = check_every
        self.written = 0
        self.lost = 0
        """Predictions handed over whose batch failed to commit (and that are not in the database)."""
        self.batches = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="prediction-writer", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """How many hand-overs wait to be written."""
        return self._queue.qsize()

    def add(self, predictions: list[dict]) -> None:
        """Queue ``predictions`` (each with :meth:`FeedbackStore.save_prediction`'s fields) for the writer;
        waits while the queue is full."""
        if not self._thread.is_alive():
            raise RuntimeError("The prediction writer is closed.")
        self._queue.put(predictions)

    def flush(self) -> None:
        """Commit everything queued so far now (without lingering), and wait until it is (or has failed and
        been logged)."""
        self._queue.put(_NOW)
        self._queue.join()

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self):
        while True:
            try:
                batch = [self._queue.get(timeout=self.check_every)]
            except queue.Empty:
                if self.store.failure is not None:
                    self.store.connection.check_writable()
                continue
            size = 0 if batch[0] in _MARKERS else len(batch[0])
            deadline = time.monotonic() + self.linger
            while size < self.max_batch and batch[-1] not in _MARKERS:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
                size += 0 if batch[-1] in _MARKERS else len(batch[-1])
            self._write([item for handed in batch if handed not in _MARKERS for item in handed])
            for _ in batch:
                self._queue.task_done()
            if batch[-1] is _STOP:
                return

    def _write(self, predictions: list[dict]) -> None:
        if not predictions:
            return
        try:
            self.store.save_predictions(predictions)
        except Exception:  # a bad batch must not stop the writer; the log names it
            self.lost += len(predictions)
            log.exception("Could not record %d predictions: they are lost", len(predictions))
            return
        self.written += len(predictions)
        self.batches += 1
