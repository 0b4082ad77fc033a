"""Shared fixtures: small GPT-J checkpoints built by the tests themselves, offline."""

import os
import shutil
import tempfile
from pathlib import Path

CACHES = Path(tempfile.mkdtemp(prefix="moderation-tests-"))
os.environ.update(
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    HF_HOME=str(CACHES / "huggingface"),
    MODERATION_CACHE=str(CACHES / "moderation"),
    TOKENIZERS_PARALLELISM="false",
)

import pytest  # noqa: E402

from moderation.demo import ensure_demo_model, new_gptj, split_seed, train_tokenizer  # noqa: E402
from moderation.engine import Moderator  # noqa: E402


def pytest_sessionfinish(session):
    """Model caches live in the test session's own folder (set above, before transformers loads)."""
    shutil.rmtree(CACHES, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised GPT-J with a 256-token context, saved as transformers saves any checkpoint."""
    path = tmp_path_factory.mktemp("tiny-gptj")
    records, _ = split_seed()
    tokenizer = train_tokenizer(records, vocab_size=400)
    model = new_gptj(tokenizer, n_embd=32, n_layer=2, n_head=2, rotary_dim=8, n_positions=256, seed=1)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_moderator(tiny_model_dir):
    return Moderator.load(str(tiny_model_dir))


@pytest.fixture(scope="session")
def demo_model_dir():
    """The demo model, trained once per test session into the session's cache (as the app builds it)."""
    return ensure_demo_model(progress=False)


@pytest.fixture(scope="session")
def demo_moderator(demo_model_dir):
    return Moderator.load(str(demo_model_dir))
