"""One server: the Gradio page at /, the OpenAI-compatible moderation API under /v1, and /healthz.

    python app.py [--model M] [--db feedback.db] [--host 127.0.0.1] [--port 7860] [--auth FILE]
"""

import argparse
import contextlib
import ipaddress
import math
import os
import sys
from pathlib import Path

import gradio as gr
import uvicorn
from fastapi import FastAPI, HTTPException
from gradio.route_utils import API_PREFIX
from gradio.routes import App
from gradio.utils import get_upload_folder

from feedback.api_keys import ApiKeys
from feedback.idempotency import KEY_HOURS
from feedback.reviewers import Reviewers
from feedback.splits import TEST_SHARE, check_test_share
from feedback.store import FeedbackStore
from moderation.command_line import (
    add_gate_options,
    add_model_options,
    add_settings_options,
    open_models,
    shared_policy,
)
from moderation.errors import USER_ERRORS
from moderation.evaluate import read_gold
from moderation.evaluate.gate import GateRules
from moderation.loader import open_reference
from moderation.models import ModelSpec, ServedModel, served_as

from .api.document import serve_document
from .api.errors import install_error_handlers
from .api.feedback import feedback_router
from .api.limits import BodyLimit, UploadQuota
from .api.moderations import moderation_router
from .api.monitoring import monitoring_router
from .api.unrouted import Unrouted
from .api.versions import versions_router
from .logins import ClientAddress, LoginLimiter, login_check
from .prometheus import CountRequests
from .scratch import ScratchFolder
from .service import Limits, PlaygroundService
from .ui.inputs import only_uploads
from .ui.page import PAGE_JS, build_page
from .uploads import CLIENT_SHARE, Uploads

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
GRACEFUL_SHUTDOWN_S = 3
"""At shutdown, requests in flight get this long to finish; open page streams are then cut."""
MAX_BODY = 1_000_000
"""Bytes a request body may have by default (--max-body)."""
MAX_UPLOAD = 100_000_000
"""Bytes a file uploaded to the page may have by default (--max-upload)."""
MAX_UPLOADS = 1_000_000_000
"""Bytes of uploads the server keeps at once by default (--max-uploads); a client address may keep a quarter."""
UPLOAD_ROUTE = f"{API_PREFIX}/upload"
"""Where the page uploads files: bounded by Gradio per file (``max_upload``), and as a whole (with the multipart
envelope, :data:`UPLOAD_ENVELOPE`) by the body limit, not by ``max_body``."""
UPLOAD_ENVELOPE = 64 * 1024
"""Bytes an upload's body may have beyond ``max_upload``: the multipart boundaries and headers around the file."""
DEEP_LINK_ROUTE = f"{API_PREFIX}/deep_link"


def create_app(service: PlaygroundService, *, reviewers: Reviewers | None = None, record_api: bool = True,
               max_body: int = MAX_BODY, max_upload: int = MAX_UPLOAD, max_uploads: int = MAX_UPLOADS,
               api_keys: ApiKeys | None = None, login_limiter: LoginLimiter | None = None) -> FastAPI:
    """The REST API under /v1, /healthz and /metrics, and the page at / (behind a login with ``reviewers``,
    whose tries ``login_limiter`` limits). With ``api_keys`` the moderation routes need one of the keys.

    A request body over ``max_body`` bytes is refused with 413 before it is parsed; a file uploaded to the page
    may have up to ``max_upload`` bytes (Gradio answers 413 past it, while it streams in), and so may all the files
    of one upload together (the body limit answers 413 past them and their envelope). The server keeps at most
    ``max_uploads`` bytes of uploads, a client address a quarter of it (429 past it), in the service's scratch
    folder, and a page call may name only those files. At shutdown the service commits what it still queues and
    closes.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="Moderation Playground", description="OpenAI-compatible moderation with the labels of a policy "
                  "(the model card's five by default).",
                  lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(Unrouted, routes=app.routes)
    uploads = Uploads(service.scratch.uploads, max_total=max_uploads)
    app.add_middleware(UploadQuota, uploads=uploads, route=UPLOAD_ROUTE, max_request=max_upload + UPLOAD_ENVELOPE)
    app.add_middleware(BodyLimit, max_body=max_body,
                       bounds={UPLOAD_ROUTE: (max_upload + UPLOAD_ENVELOPE, "--max-upload")})
    app.add_middleware(ClientAddress)
    login_limiter = login_limiter or LoginLimiter()
    app.add_middleware(CountRequests, metrics=service.metrics)
    app.include_router(feedback_router(service, reviewers, login_limiter))
    app.include_router(versions_router(service, reviewers, login_limiter))
    app.include_router(moderation_router(service, record=record_api, api_keys=api_keys))
    app.include_router(monitoring_router(service))
    serve_document(app)
    app.add_api_route(DEEP_LINK_ROUTE, no_deep_links, include_in_schema=False)  # before the page, to come first
    page = build_page(service, logins=reviewers is not None).queue(max_size=service.limits.max_waiting)
    gr.mount_gradio_app(
        app,
        page,
        path="/",
        allowed_paths=[str(service.scratch.exports)],
        max_file_size=max_upload,
        auth=login_check(reviewers, login_limiter) if reviewers else None,
        auth_message="Log in with your reviewer name and password.",
        js=PAGE_JS,
    )
    take_uploads_in(app, page, uploads)
    return app


def no_deep_links():
    """Gradio saves a session's values to a file in the upload folder on any ``GET`` of its deep link route, which
    the upload bounds would not count: the page offers no deep links."""
    raise HTTPException(404, "This page offers no deep links.")


def take_uploads_in(app: FastAPI, page: gr.Blocks, uploads: Uploads) -> None:
    """Make the page mounted on ``app`` keep its uploads in ``uploads.folder`` (Gradio's own upload folder is
    shared by every server of the machine) and accept no other file in a page call.

    Gradio's own check of a page call's files (only files in its upload folder) is on once the page is launched;
    ``mount_gradio_app`` leaves it off, so it is turned on here. :func:`only_uploads` narrows it to this server's
    uploads, regular files only, before Gradio looks at them."""
    page.has_launched = True
    (mounted,) = [route.app for route in app.routes if isinstance(getattr(route, "app", None), App)]
    mounted.uploaded_file_dir = str(uploads.folder)
    for block in page.blocks.values():
        if block.GRADIO_CACHE == get_upload_folder():  # not a download, which is served from the export folder
            block.GRADIO_CACHE = str(uploads.folder)
    only_uploads(page, uploads)


def uvicorn_options(forwarded_allow_ips: str = "") -> dict:
    """How uvicorn serves the app. It believes ``X-Forwarded-For`` and ``-Proto`` only from the proxies named in
    ``forwarded_allow_ips`` (uvicorn's comma-separated list; none by default, where uvicorn's own default believes
    127.0.0.1), so the client address that logins are limited by is the connection's unless a named proxy says
    otherwise."""
    return {"log_level": "warning", "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
            "proxy_headers": bool(forwarded_allow_ips), "forwarded_allow_ips": forwarded_allow_ips}


def proxy_addresses(value: str) -> str:
    """``--forwarded-allow-ips`` checked: addresses or networks, comma-separated, or ``*`` for any."""
    for item in filter(None, (part.strip() for part in value.split(","))):
        if item == "*":
            continue
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is no IP address or network: list the proxies' addresses, "
                                             "like 10.0.0.5,10.1.0.0/16") from None
    return value


def above_zero(kind):
    """An option's type: a finite number of ``kind`` (int or float) above zero, else a message that says so."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}number above zero")
        return value

    parse.__name__ = kind.__name__
    return parse


def share(text: str) -> float:
    """An option's type: a share of accepted texts, above 0 and below 1, else a message that says so."""
    try:
        return check_test_share(float(text))
    except ValueError:  # InvalidInput is one
        raise argparse.ArgumentTypeError(f"{text!r} is not a share between 0 and 1, like {TEST_SHARE}") from None


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python app.py``."""
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    add_settings_options(parser, chat=True)
    parser.add_argument("--db", default="feedback.db", help="SQLite file for predictions and verdicts")
    parser.add_argument("--test-share", type=share, default=TEST_SHARE, metavar="SHARE",
                        help="the share of accepted texts kept for testing (never trained on), by a hash of the text; "
                        "a text keeps the split it was given first (default: %(default)s)")
    parser.add_argument("--versions", default="versions", metavar="DIR",
                        help="folder for the versions retrained from the page, with their logs and data")
    parser.add_argument("--eval-data", metavar="FILE", help="held-out texts (jsonl of {text, label}) that judge a "
                        "version with the test split, in place of the shipped held-out set")
    add_gate_options(parser)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--max-batch-size", type=int, default=32, help="texts per forward pass at most")
    parser.add_argument("--max-wait-ms", type=float, default=5, help="how long a request waits for company")
    parser.add_argument("--max-inputs", type=int, default=Limits.max_inputs, help="texts per API request at most")
    parser.add_argument("--max-chars", type=int, default=Limits.max_chars, help="characters per text at most")
    parser.add_argument("--max-waiting", type=int, default=Limits.max_waiting,
                        help="requests that may wait at once; past it the answer is 'busy, retry' (HTTP 503)")
    parser.add_argument("--max-body", type=int, default=MAX_BODY,
                        help="bytes a request body may have; a larger one gets 413 (default: %(default)s)")
    parser.add_argument("--max-upload", type=int, default=MAX_UPLOAD,
                        help="bytes a file uploaded to the page (Batch, Evaluate) may have; a larger one gets 413 "
                        "(default: %(default)s)")
    parser.add_argument("--max-uploads", type=int, default=MAX_UPLOADS,
                        help="bytes of uploads the server keeps at once, a client address a quarter of them; past "
                        "that an upload gets 429. Each upload is removed once the call that used it ends, or within "
                        "the hour (default: %(default)s)")
    parser.add_argument("--no-record-api", action="store_true", help="don't keep the API's predictions")
    parser.add_argument("--keep-days", type=above_zero(int), metavar="DAYS",
                        help="delete the predictions older than DAYS that no reviewer judged, at start and daily "
                        "(default: keep every prediction)")
    parser.add_argument("--key-hours", type=above_zero(float), default=KEY_HOURS, metavar="HOURS",
                        help="how long an idempotency key is kept: a retry within it gets the first answer again "
                        "(default: %(default)s)")
    parser.add_argument("--auth", default=os.environ.get("MODERATION_AUTH"), metavar="FILE",
                        help="reviewers file (python -m feedback reviewers add NAME --file FILE): log in to review")
    parser.add_argument("--api-keys", default=os.environ.get("MODERATION_API_KEYS"), metavar="FILE",
                        help="keys file (python -m feedback api-keys add NAME --file FILE): /v1/moderations* then "
                        "needs 'Authorization: Bearer KEY'")
    parser.add_argument("--insecure", action="store_true", help="serve another address than localhost without --auth")
    parser.add_argument("--forwarded-allow-ips", type=proxy_addresses, default="", metavar="IPS",
                        help="the proxies in front of the app (addresses or networks, comma-separated): their "
                        "X-Forwarded-For names the client that logins are limited by (default: none is believed)")
    return parser.parse_args(argv)


def open_serving(args: argparse.Namespace, store: FeedbackStore) -> tuple[list[ServedModel], Path | None]:
    """The models to serve at start, the default first, and the default's version folder: those the command line (or
    ``$MODERATION_MODEL``) names, else the version promoted last (its adapter on the model it was trained on, in its
    format and policy), else the default model. The log says which, and why, and what each model takes."""
    promoted = store.serving.promoted()
    folder = promoted and promoted["folder"]
    chosen = args.model or args.models or args.adapter or os.environ.get("MODERATION_MODEL")
    last = promoted and (f"{promoted['version']}, the version promoted last ({promoted['action']} by "
                         f"{promoted['reviewer']} at {promoted['created'][:19].replace('T', ' ')} UTC)")
    if folder and not chosen and not Path(folder).is_dir():
        print(f"warning: {last} is gone from {folder}: serving the default model instead.", file=sys.stderr,
              flush=True)
    elif folder and not chosen:
        print(f"Serving {last}.", flush=True)
        moderator = open_reference(folder, backend=args.backend, base_url=args.base_url)
        shared = shared_policy(args)
        models = [served_as(ModelSpec(None, folder), moderator, shared, threshold=args.threshold,
                            intervention=args.intervention)]
        return described(models), Path(folder)
    models = open_models(args)
    if folder and chosen:
        print(f"Serving {models[0].name}, as the command line says (--model, --adapter or $MODERATION_MODEL win): "
              f"not {last}.", flush=True)
    return described(models), Path(args.adapter) if args.adapter else None


def described(models: list[ServedModel]) -> list[ServedModel]:
    """``models``, once the log says what each is and the memory it takes (the first is the default)."""
    for number, model in enumerate(models):
        print(f"{'Default model' if number == 0 else 'Also serving'} {model.describe()}", flush=True)
    return models


def shadow_again(service: PlaygroundService) -> None:
    """Run again the shadow that ran when the app stopped, if its version is still there (the log says so)."""
    shadowing = service.store.serving.shadowing()
    if shadowing is None:
        return
    try:
        service.serving.resume_shadow(Path(shadowing["folder"]))
    except (*USER_ERRORS, OSError) as error:
        print(f"warning: the shadow {shadowing['version']} does not run again ({error}): shadow it from the Retrain "
              "tab.", file=sys.stderr, flush=True)
        return
    print(f"Shadowing {shadowing['version']} again, as before the app stopped.", flush=True)


def main(argv=None) -> int:
    """Load the model, open the database and serve the playground; returns the exit code."""
    args = parse_args(argv)
    if not args.auth and args.host not in LOCAL_HOSTS:
        if not args.insecure:
            print(f"error: without --auth anyone who reaches {args.host} could read and change the feedback. "
                  "Add reviewers and pass --auth FILE, or --insecure to serve without logins.", file=sys.stderr)
            return 2
        print(f"warning: serving {args.host} without logins (--insecure): anyone who reaches it can read and "
              "change the feedback.", file=sys.stderr)
    if not args.api_keys and args.host not in LOCAL_HOSTS:
        recorded = "" if args.no_record_api else ", and each text they send is recorded"
        print(f"warning: serving {args.host} without --api-keys: REST /v1/moderations is open to anyone who reaches "
              f"it{recorded}. Make keys with 'python -m feedback api-keys add NAME --file FILE' and pass "
              "--api-keys FILE.", file=sys.stderr)
    if args.max_uploads < CLIENT_SHARE * (args.max_upload + UPLOAD_ENVELOPE):
        print(f"error: a client may keep a quarter of --max-uploads, less than one upload of --max-upload bytes: "
              f"give --max-uploads at least {CLIENT_SHARE * (args.max_upload + UPLOAD_ENVELOPE)}.", file=sys.stderr)
        return 2
    try:
        reviewers = Reviewers(args.auth) if args.auth else None
        api_keys = ApiKeys(args.api_keys) if args.api_keys else None
        store = FeedbackStore(args.db, key_hours=args.key_hours, test_share=args.test_share)
        (served, *others), folder = open_serving(args, store)
        moderator, settings = served.moderator, served.settings
        held_out = read_gold(args.eval_data, settings.policy) if args.eval_data else None
        service = PlaygroundService(
            moderator, store, ScratchFolder(get_upload_folder(), args.db), settings=settings,
            limits=Limits(args.max_inputs, args.max_chars, args.max_waiting),
            max_batch_size=args.max_batch_size, max_wait=args.max_wait_ms / 1000, versions_dir=args.versions,
            keep_days=args.keep_days, rules=GateRules(args.max_benign_regressions, args.min_gate_texts),
            held_out=held_out, served_folder=folder, others=others,
        )
        shadow_again(service)
    except (*USER_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = create_app(service, reviewers=reviewers, record_api=not args.no_record_api, max_body=args.max_body,
                     max_upload=args.max_upload, max_uploads=args.max_uploads, api_keys=api_keys)
    print(f"Moderation Playground: http://{args.host}:{args.port}/ (model: {', '.join(service.model_names)}, db: "
          f"{args.db})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, **uvicorn_options(args.forwarded_allow_ips))
    return 0
