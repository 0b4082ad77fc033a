"""The daily sweep of a running server: expired idempotency keys and, with a retention period, the predictions no
reviewer judged once they are older than it (:meth:`feedback.erasure.Erasure.sweep`), at start and once a day."""

import logging
import threading

from moderation.errors import Unavailable

from .store import FeedbackStore

log = logging.getLogger("feedback.retention")

SWEEP_EVERY_S = 24 * 3600


class DailySweep:
    """A thread that sweeps ``store`` at once, then every ``every`` seconds, until closed; ``keep_days`` None keeps
    every prediction (only expired keys go)."""

    def __init__(self, store: FeedbackStore, keep_days: int | None, *, every: float = SWEEP_EVERY_S):
        self.store = store
        self.keep_days = keep_days
        self.every = every
        self.sweeps = 0
        """Sweeps done (whether or not they found anything to delete)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="daily-sweep", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop sweeping (a sweep under way finishes its transaction first)."""
        self._stop.set()
        self._thread.join()

    def _run(self):
        while not self._stop.is_set():
            try:
                removed = self.store.erasure.sweep(self.keep_days)
                log.info("Swept %d predictions no reviewer judged, %d shadow predictions of their texts and %d expired "
                         "idempotency keys", removed["predictions"], removed["shadow_predictions"],
                         removed["idempotency_keys"])
            except Unavailable as error:  # the store reports the failure itself (/healthz); the next sweep retries
                log.warning("The daily sweep could not write: %s", error)
            self.sweeps += 1
            self._stop.wait(self.every)
