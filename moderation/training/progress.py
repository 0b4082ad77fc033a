"""A training run's progress as lines of its log: written by the trainer, read back by whatever shows the run."""

import re

_STEP = re.compile(r"^step (\d+)/(\d+)\b", re.MULTILINE)


def progress_line(step: int, total: int, **figures: float) -> str:
    """``step 40/200 loss 0.512 eval_loss 0.431``: where a run is, with the figures just measured."""
    shown = "".join(f" {name} {value:.4g}" for name, value in figures.items())
    return f"step {step}/{total}{shown}"


def last_progress(log: str) -> tuple[int, int] | None:
    """(step, total steps) of the last progress line in ``log``, or None before the first one."""
    steps = _STEP.findall(log)
    return (int(steps[-1][0]), int(steps[-1][1])) if steps else None
