"""What the app serves: one Moderator, replaced whole by another once it is loaded (the one it replaces kept loaded,
so that rolling back to it is instant), and at most one shadow beside it. Every change is kept in the database first
(:mod:`feedback.serving`: who, when, why, the gate's figures), so a restart serves the last promoted version again."""

import threading
from pathlib import Path

from feedback.serving import ROLL_BACK, SHADOW, STOP_SHADOW
from feedback.store import FeedbackStore
from moderation.engine import Moderator
from moderation.errors import Conflict, InvalidInput
from moderation.loader import open_moderator, open_reference
from moderation.results import ModerationResult
from moderation.settings import Settings

from .shadow import Shadow

BASE = ""
"""What names the model the app runs on, without a trained version, among the roll-back choices."""


class Serving:
    """The serving Moderator (``moderator``, from the version ``folder``, None for a model without one), the
    previous one, and the ``shadow``; changed one at a time, each change recorded in ``store`` before it is made."""

    def __init__(self, moderator: Moderator, store: FeedbackStore, folder: Path | None = None):
        self.moderator = moderator
        self.folder = resolved(folder)
        self.store = store
        self.shadow: Shadow | None = None
        self.lock = threading.RLock()
        """Held through a whole change (loading and gating included): one change at a time."""
        self._previous: tuple[Moderator, Path | None] | None = None
        self._candidate: tuple[Moderator, Path | None] | None = None

    def load(self, folder: Path | None) -> Moderator:
        """The Moderator of the version in ``folder`` on the model served now (None: that model without a version):
        the one serving, the previous one, or the candidate loaded last when it is one of them, else loaded now."""
        folder = resolved(folder)
        with self.lock:
            for moderator, loaded in filter(None, [(self.moderator, self.folder), self._previous, self._candidate]):
                if loaded == folder:
                    return moderator
            source = self.moderator.source
            if source is None:
                raise InvalidInput("The model runs on a vLLM server: serve a version by starting the app with "
                                   "--adapter.")
            moderator = (open_moderator(source, progress=False) if folder is None else
                         open_reference(str(folder), base=source, progress=False))
            self._candidate = (moderator, folder)
            return moderator

    def promote(self, moderator: Moderator, folder: Path | None, action: str, *, reviewer: str,
                reason: str | None = None, gate: dict | None = None) -> dict:
        """Serve ``moderator`` (from ``folder``) after recording ``action`` (serve, override or roll back) with who,
        why and the gate's figures; the one it replaces is kept for an instant roll back. Returns the event."""
        folder = resolved(folder)
        with self.lock:
            event = self.store.serving.record(action, version=moderator.name, folder=stored(folder),
                                              reviewer=reviewer, reason=reason, gate=gate)
            self._previous = (self.moderator, self.folder)
            self.moderator, self.folder = moderator, folder
            if self._candidate and self._candidate[1] == folder:
                self._candidate = None
            return event

    def roll_back(self, to: Path | None, *, reviewer: str) -> dict:
        """Serve again what served before: the version in ``to`` (None: the model without a version)."""
        to = resolved(to)
        with self.lock:
            if to == self.folder:
                raise Conflict(f"{self.moderator.name} is serving already: choose another version to roll back to.")
            return self.promote(self.load(to), to, ROLL_BACK, reviewer=reviewer)

    def roll_back_previous(self, *, reviewer: str) -> dict:
        """Serve again what served before the last change (kept loaded: at once)."""
        with self.lock:
            if self._previous is None:
                raise Conflict("Nothing to roll back to: no other version was served since the server started "
                               "(choose an earlier one from the list).")
            return self.roll_back(self._previous[1], reviewer=reviewer)

    def start_shadow(self, moderator: Moderator, folder: Path, *, reviewer: str) -> Shadow:
        """Run ``moderator`` (the version in ``folder``) as the shadow, in place of any other."""
        folder = resolved(folder)
        with self.lock:
            if folder == self.folder:
                raise Conflict(f"{moderator.name} is serving: shadow another version.")
            self.store.serving.record(SHADOW, version=moderator.name, folder=stored(folder), reviewer=reviewer)
            return self._shadow(moderator, folder)

    def resume_shadow(self, folder: Path) -> Shadow:
        """Run again the shadow of the version in ``folder`` that ran when the app stopped (already recorded)."""
        with self.lock:
            return self._shadow(self.load(folder), resolved(folder))

    def _shadow(self, moderator: Moderator, folder: Path) -> Shadow:
        self._stop_shadow()
        self.shadow = Shadow(moderator, folder, self.store)
        return self.shadow

    def stop_shadow(self, *, reviewer: str) -> Shadow:
        """Stop the shadow; Conflict when none runs."""
        with self.lock:
            if self.shadow is None:
                raise Conflict("No shadow runs: shadow a version first.")
            shadow = self.shadow
            self.store.serving.record(STOP_SHADOW, version=shadow.name, folder=stored(shadow.folder),
                                      reviewer=reviewer)
            self._stop_shadow()
            return shadow

    def offer(self, results: list[ModerationResult], settings: Settings) -> None:
        """Hand what the serving model answered (and recorded) to the shadow, if one runs; never waits."""
        shadow = self.shadow
        if shadow is not None and results and results[0].mode == "score":
            shadow.offer(results, settings)

    def close(self) -> None:
        """Stop the shadow, if one runs."""
        with self.lock:
            self._stop_shadow()

    def _stop_shadow(self) -> None:
        if self.shadow is not None:
            self.shadow.close()
            self.shadow = None


def resolved(folder: str | Path | None) -> Path | None:
    """A version's folder as its absolute path (None for the model without a version)."""
    return None if folder is None else Path(folder).resolve()


def stored(folder: Path | None) -> str | None:
    """How the database names a version's folder (None for the model without a version)."""
    return None if folder is None else str(folder)
