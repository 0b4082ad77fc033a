"""The test session: its caches and environment, the demo model built beside the first tests, and shared
fixtures: small GPT-J checkpoints built by the tests themselves (offline), the fake backend's service, the app
served in this process (:mod:`servers`) and command lines run in this process.

Fixtures import the app where they use it: pytest-xdist's first process runs no test and loads none of it."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).parent.parent
# MODERATION_TEST_CACHE keeps the built models between runs while developing; CI leaves it unset. The session's
# workers (pytest-xdist) are started with it set to the session's folder, so they share one demo model.
KEEP_CACHES = bool(os.environ.get("MODERATION_TEST_CACHE"))
CACHES = Path(os.environ.get("MODERATION_TEST_CACHE") or tempfile.mkdtemp(prefix="moderation-tests-"))
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
os.environ.update(
    MODERATION_TEST_CACHE=str(CACHES),
    # Each worker's torch gets its share of the cores (the processes its tests start inherit it).
    OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // WORKERS)),
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    HF_HOME=str(CACHES / "huggingface"),
    MODERATION_CACHE=str(CACHES / "moderation"),
    TOKENIZERS_PARALLELISM="false",
    GRADIO_ANALYTICS_ENABLED="False",
)

import pytest  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
demo_build: subprocess.Popen | None = None

CHAT_TEMPLATES = ROOT / "tests" / "data" / "chat_templates"
FAMILIES = {
    "llama-guard": ("llama-guard-3-1b", ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                                         "<|eot_id|>"]),
    "yes-no": ("shieldgemma-9b", ["<bos>", "<start_of_turn>", "<end_of_turn>"]),
}
"""Each format's family: its chat template and its special tokens (the first its tokenizer's BOS)."""
SHARPER_ATTENTION, SURER_OUTPUT = 20, 30
"""How much a family model's query and key projections, and its output layer, are scaled up from a random GPT-J's,
to a trained model's reach: at the random scale (0.02 wide) attention is even over a guard prompt's 300 to 600
tokens, so the answer's position barely tells one text or question from another (its state varies by 1.5%), and
the 32-wide output layer cannot make any token more than a few times likelier than the 400 others. LoRA trains
neither the embeddings nor the output layer, so without these a LoRA can learn nothing a test could see."""


def pytest_sessionstart(session):
    """The demo model trains in a process of its own (one thread) while the tests that need no trained model run;
    the session's first process starts it, not its workers."""
    global demo_build
    if not hasattr(session.config, "workerinput"):
        demo_build = subprocess.Popen([sys.executable, "-m", "moderation.demo"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})


def needs_demo_model(item) -> bool:
    """Whether a test uses the demo model: through its fixtures, or named by a parameter (a fixture looked up)."""
    params = item.callspec.params.values() if hasattr(item, "callspec") else ()
    return "demo_model_dir" in item.fixturenames or any(str(value).startswith("demo") for value in params)


def pytest_collection_modifyitems(items):
    """The tests that need the trained demo model run last, once it is built. Within each group the modules
    that drive the page through gradio_client (they import ``PageClient``) start first: their calls mostly wait
    on its polling, and early on the demo model's build fills those waits. Then the slow tests (and the
    browsers), so that the workers end together. A stable sort keeps the rest in order."""
    items.sort(key=lambda item: (needs_demo_model(item), "PageClient" not in vars(item.module),
                                 not (item.get_closest_marker("slow") or item.get_closest_marker("browser"))))


def pytest_sessionfinish(session):
    """Model caches live in the test session's own folder (set above, before transformers loads)."""
    if demo_build is not None and demo_build.poll() is None:
        demo_build.kill()
    if not KEEP_CACHES:
        shutil.rmtree(CACHES, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright: one for each test process, started when a test first needs it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


BROWSER_WAIT_MS = 20_000
"""How long a browser test waits for what it expects (Playwright's default, 5 s, is short on a loaded machine): a
test that passes does not wait longer for it."""


@pytest.fixture
def browser_page(browser):
    """A page of its own browser context (its own storage and cookies): 1280 x 1000, downloads accepted."""
    from playwright.sync_api import expect

    expect.set_options(timeout=BROWSER_WAIT_MS)
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page.set_default_timeout(BROWSER_WAIT_MS)
    yield page
    page.close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised GPT-J with a 256-token context, saved as transformers saves any checkpoint."""
    from moderation.demo.build import new_gptj, train_tokenizer
    from moderation.demo.recipe import split_seed

    path = tmp_path_factory.mktemp("tiny-gptj")
    records, _ = split_seed()
    tokenizer = train_tokenizer(records, vocab_size=400)
    model = new_gptj(tokenizer, n_embd=32, n_layer=2, n_head=2, rotary_dim=8, n_positions=256, seed=1)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def family_model_dirs(tmp_path_factory):
    """A random GPT-J per format, whose tokenizer has the family's special tokens (one token each) and chat
    template, saved and loaded as transformers saves any checkpoint. Its attention and output layer are scaled up
    (:data:`SHARPER_ATTENTION`, :data:`SURER_OUTPUT`); its seed is one whose untrained answers are not Yes to every
    question (a random model that says Yes to all scores 3/4 on the yes-no format's own labels untrained)."""
    import torch

    from moderation.demo.build import new_gptj, train_tokenizer
    from moderation.demo.recipe import split_seed

    records = split_seed()[0]
    folders = {}
    for format, (chat_template, special_tokens) in FAMILIES.items():
        folders[format] = path = tmp_path_factory.mktemp(chat_template)
        tokenizer = train_tokenizer(records, vocab_size=400)
        tokenizer.add_special_tokens({"bos_token": special_tokens[0], "additional_special_tokens": special_tokens[1:]})
        tokenizer.chat_template = (CHAT_TEMPLATES / f"{chat_template}.jinja").read_text()
        model = new_gptj(tokenizer, n_embd=32, n_layer=2, n_head=2, rotary_dim=8, n_positions=2048, seed=0)
        with torch.no_grad():
            for block in model.transformer.h:
                block.attn.q_proj.weight.mul_(SHARPER_ATTENTION)
                block.attn.k_proj.weight.mul_(SHARPER_ATTENTION)
            model.lm_head.weight.mul_(SURER_OUTPUT)
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return folders


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA adapter trained on the tiny model by ``python -m moderation.training`` (its own records, no replay)."""
    from moderation.demo.recipe import split_seed
    from moderation.prompt import format_record
    from moderation.training.__main__ import main as train

    folder = tmp_path_factory.mktemp("tiny-adapter")
    data = folder / "export.jsonl"
    data.write_text("".join(json.dumps({"text": format_record(*record)}) + "\n" for record in split_seed()[0][:60]))
    code = train(["--model", str(tiny_model_dir), "--data", str(data), "--out", str(folder / "adapter"), "--lora",
                  "--max-steps", "20", "--eval-steps", "10", "--learning-rate", "3e-2", "--replay-ratio", "0"])
    assert code == 0
    return folder / "adapter"


def demo_adapter(folder: Path, records, *options) -> Path:
    """A LoRA adapter trained on the demo model by ``python -m moderation.training`` on ``records`` (no replay, 20
    steps, checkpoints chosen on the shipped held-out set; started by "ana"), in ``folder``."""
    from moderation.labelled_files import HELDOUT_FILE
    from moderation.prompt import format_record
    from moderation.training.__main__ import main as train

    data = folder / "export.jsonl"
    data.write_text("".join(json.dumps({"text": format_record(*record)}) + "\n" for record in records))
    code = train(["--model", "demo", "--data", str(data), "--eval-data", str(HELDOUT_FILE), "--out",
                  str(folder / "adapter"), "--lora", "--max-steps", "20", "--replay-ratio", "0", "--started-by", "ana",
                  *options])
    assert code == 0
    return folder / "adapter"


@pytest.fixture(scope="session")
def harmful_adapter_dir(demo_model_dir, tmp_path_factory):
    """A retrain a gate must refuse: the demo model taught that 40 benign texts of the pool need intervention (as
    accepted verdicts that label benign texts so would teach it)."""
    from moderation.labelled_files import POOL_FILE, read_labelled
    from moderation.policy import CARD

    benign = [text for text, label in read_labelled(POOL_FILE, CARD) if label == "casual"][:40]
    return demo_adapter(tmp_path_factory.mktemp("harmful"), [(text, "needs intervention") for text in benign],
                        "--version", "demo-harmful")


@pytest.fixture(scope="session")
def harmless_adapter_dir(demo_model_dir, tmp_path_factory):
    """A retrain a gate must allow: the demo model trained again, gently, on 40 of its seed's own labels."""
    from moderation.labelled_files import SEED_FILE, read_labelled
    from moderation.policy import CARD

    return demo_adapter(tmp_path_factory.mktemp("harmless"), read_labelled(SEED_FILE, CARD)[:40], "--learning-rate",
                        "5e-4", "--version", "demo-harmless")


@pytest.fixture(scope="session")
def tiny_moderator(tiny_model_dir):
    from moderation.loader import open_moderator

    return open_moderator(str(tiny_model_dir))


@pytest.fixture(scope="session")
def demo_model_dir():
    """The demo model, trained once per test session into the session's cache (as the app builds it): this waits
    for the build the session started, and builds it here if that one failed (raising what went wrong)."""
    from moderation.demo import ensure_demo_model

    return ensure_demo_model(progress=False)


@pytest.fixture(scope="session")
def demo_moderator(demo_model_dir):
    from moderation.loader import open_moderator

    return open_moderator("demo", progress=False)


@pytest.fixture
def service(tmp_path):
    """The service on the fake backend, with its own database."""
    from servers import make_service

    service = make_service(tmp_path)
    yield service
    service.close()


@pytest.fixture(scope="module")
def fake_app(tmp_path_factory):
    """The app on the fake backend, served in this process for the module's tests."""
    from servers import running_in_process

    with running_in_process(tmp_path_factory.mktemp("fake-app")) as app:
        yield app


@pytest.fixture(scope="module")
def demo_app(demo_moderator, tmp_path_factory):
    """The app on the demo model, served in this process for the module's tests."""
    from servers import running_in_process

    with running_in_process(tmp_path_factory.mktemp("demo-app"), demo_moderator) as app:
        yield app


@dataclass
class Ran:
    """What a command line's ``main`` did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capfd):
    """Runs a command line's ``main(argv)`` in this process, as its ``python -m`` entry would: a :class:`Ran`."""

    def run(main, *args) -> Ran:
        capfd.readouterr()
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as exit:
            code = exit.code
        printed = capfd.readouterr()
        return Ran(code, printed.out, printed.err)

    return run
