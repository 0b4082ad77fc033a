"""Moderation with GPT-JT-Moderation: prompt assembly, model loading and label scoring.

Importing this package is cheap; torch and transformers load only with ``moderation.engine``.
"""
