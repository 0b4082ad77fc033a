"""Retraining: the data a fine-tune learns from and is judged on, the trainer (transformers' Trainer and peft),
its recipe, its progress lines and its report; ``python -m moderation.training`` is the command line. Importing the
package loads nothing heavy: ``data``, ``recipe`` and ``progress`` need no torch, ``trainer`` and ``report`` do."""
