"""Predictions recorded off the request path: one writer thread commits whatever is queued in one transaction.

A caller hands over its predictions and goes on; the writer takes everything waiting (up to ``max_batch``
predictions), commits it in one transaction (one sync to disk instead of one per request), and repeats.
The queue is bounded: when the writer falls behind, :meth:`PredictionWriter.add` waits for room, so the
requests slow down instead of memory growing. :meth:`PredictionWriter.close` commits what is still queued.

Durability: a prediction handed over is on disk once its batch commits, a few milliseconds later; if the
process dies in between, the last batch is lost. Verdicts never go through here: they are committed before
they are acknowledged.
"""

import logging
import queue
import threading

from .store import FeedbackStore

log = logging.getLogger("feedback.writer")

_STOP = object()


class PredictionWriter:
    """One thread that records queued predictions in :class:`FeedbackStore`, a batch per transaction."""

    def __init__(self, store: FeedbackStore, *, max_queue: int = 1024, max_batch: int = 512):
        self.store = store
        self.max_batch = max_batch
        self.written = 0
        self.failed = 0
        self.batches = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="prediction-writer", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """How many hand-overs wait to be written."""
        return self._queue.qsize()

    def add(self, predictions: list[dict]) -> None:
        """Queue ``predictions`` (each with :meth:`FeedbackStore.record_prediction`'s fields) for the writer;
        waits while the queue is full."""
        if not self._thread.is_alive():
            raise RuntimeError("The prediction writer is closed.")
        self._queue.put(predictions)

    def flush(self) -> None:
        """Wait until everything queued so far is committed (or has failed and been logged)."""
        self._queue.join()

    def close(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self):
        while True:
            batch = [self._queue.get()]
            size = 0 if batch[0] is _STOP else len(batch[0])
            while size < self.max_batch and batch[-1] is not _STOP:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
                size += 0 if batch[-1] is _STOP else len(batch[-1])
            predictions = [item for handed in batch if handed is not _STOP for item in handed]
            self._write(predictions)
            for _ in batch:
                self._queue.task_done()
            if batch[-1] is _STOP:
                return

    def _write(self, predictions: list[dict]) -> None:
        if not predictions:
            return
        try:
            self.store.record_predictions(predictions)
        except Exception:  # a bad batch must not stop the writer; the log names it
            self.failed += len(predictions)
            log.exception("Could not record %d predictions", len(predictions))
            return
        self.written += len(predictions)
        self.batches += 1
