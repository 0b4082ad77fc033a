"""A shadow: a candidate version that labels, on a thread of its own, the texts the serving model has answered, so
that its labels can be set beside the serving model's on live traffic without delaying an answer.

The answer always comes from the serving model. What it answered is handed over at once into a bounded queue: when
the shadow falls behind and the queue is full, the work is dropped and counted, never waited for. The thread runs at
the lowest CPU priority (on Linux), so that where the two models share the processor, the serving one comes first.
"""

import logging
import os
import queue
import sys
import threading
from pathlib import Path

from feedback.store import FeedbackStore
from moderation.engine import Moderator
from moderation.results import ModerationResult
from moderation.settings import Settings

log = logging.getLogger("playground.shadow")

MAX_QUEUE = 64
"""Answered batches that may wait for the shadow; past it, the shadow drops them."""
MAX_BATCH = 32
"""Texts the shadow labels in one call at most: what waits is labelled together."""
LOWEST_PRIORITY = 19
_STOP = object()


class Shadow:
    """``moderator`` (the version in ``folder``) labelling beside the serving model; its labels, and the serving
    model's, are recorded in ``store``. ``labelled`` and ``dropped`` count the texts it labelled and those it had no
    room for."""

    def __init__(self, moderator: Moderator, folder: Path, store: FeedbackStore, *, max_queue: int = MAX_QUEUE):
        self.moderator = moderator
        self.folder = folder
        self.store = store
        self.labelled = 0
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()

    @property
    def name(self) -> str:
        """The shadow version's name."""
        return self.moderator.name

    @property
    def depth(self) -> int:
        """How many answered batches wait for the shadow."""
        return self._queue.qsize()

    def offer(self, results: list[ModerationResult], settings: Settings) -> None:
        """Hand over what the serving model answered (scored results, under ``settings``); never waits: when the
        queue is full the texts are dropped, and counted."""
        try:
            self._queue.put_nowait((results, settings))
        except queue.Full:
            self.dropped += len(results)

    def close(self) -> None:
        """Stop labelling (what still waits is dropped) and end the thread."""
        while True:
            try:
                self.dropped += len(self._queue.get_nowait()[0])
            except queue.Empty:
                break
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self):
        if sys.platform.startswith("linux"):  # this thread (and the threads it starts) only: the serving one first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_PRIORITY)
        while True:
            waiting = [self._queue.get()]
            while waiting[-1] is not _STOP and sum(len(results) for results, _ in waiting) < MAX_BATCH:
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = waiting[-1] is _STOP
            groups: dict[Settings, list[ModerationResult]] = {}
            for results, settings in waiting[:-1] if stop else waiting:
                groups.setdefault(settings, []).extend(results)
            for settings, results in groups.items():
                self._label(results, settings)
            if stop:
                return

    def _label(self, results: list[ModerationResult], settings: Settings) -> None:
        """Label what the serving model answered under ``settings``, and record both; a failure is logged and its
        texts counted as dropped (it must not stop the shadow, nor reach the serving path)."""
        try:
            self._shadow(results, settings)
        except Exception:
            self.dropped += len(results)
            log.exception("The shadow %s could not label %d texts", self.name, len(results))

    def _shadow(self, results: list[ModerationResult], settings: Settings) -> None:
        shadowed = self.moderator.moderate([result.text for result in results], settings)
        self.store.shadows.save([{"text": served.text, "template": served.template, "serving_model": served.model,
                                  "serving_label": served.label, "model": mine.model, "label": mine.label,
                                  "scores": mine.scores} for served, mine in zip(results, shadowed)])
        self.labelled += len(results)
