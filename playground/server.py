"""One server: the Gradio page at /, the OpenAI-compatible moderation API under /v1, and /healthz.

    python app.py [--model M] [--db feedback.db] [--host 127.0.0.1] [--port 7860] [--auth FILE]
"""

import argparse
import contextlib
import os
import sys
import tempfile

import gradio as gr
import uvicorn
from fastapi import FastAPI
from gradio.route_utils import API_PREFIX

from feedback.api_keys import ApiKeys
from feedback.reviewers import Reviewers
from feedback.store import FeedbackStore
from moderation.errors import USER_ERRORS
from moderation.options import add_model_options, add_settings_options, open_model, settings_from

from .api.document import serve_document
from .api.errors import install_error_handlers
from .api.feedback import feedback_router
from .api.limits import BodyLimit
from .api.moderations import moderation_router
from .api.monitoring import monitoring_router
from .api.unrouted import Unrouted
from .logins import ClientAddress, FailedLogins, login_check
from .metrics import CountRequests
from .service import Limits, PlaygroundService
from .ui.page import PAGE_JS, build_page

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
GRACEFUL_SHUTDOWN_S = 3
"""At shutdown, requests in flight get this long to finish; open page streams are then cut."""
MAX_BODY = 1_000_000
"""Bytes a request body may have by default (--max-body)."""
MAX_UPLOAD = 100_000_000
"""Bytes a file uploaded to the page may have by default (--max-upload)."""
UPLOAD_ROUTE = f"{API_PREFIX}/upload"
"""Where the page uploads files: bounded by Gradio per file (``max_upload``), and as a whole (with the multipart
envelope, :data:`UPLOAD_ENVELOPE`) by the body limit, not by ``max_body``."""
UPLOAD_ENVELOPE = 64 * 1024
"""Bytes an upload's body may have beyond ``max_upload``: the multipart boundaries and headers around the file."""


def create_app(service: PlaygroundService, *, reviewers: Reviewers | None = None, record_api: bool = True,
               max_body: int = MAX_BODY, max_upload: int = MAX_UPLOAD, api_keys: ApiKeys | None = None,
               failed_logins: FailedLogins | None = None) -> FastAPI:
    """The REST API under /v1, /healthz and /metrics, and the page at / (behind a login with ``reviewers``,
    whose failed logins ``failed_logins`` limits). With ``api_keys`` the moderation routes need one of the keys.

    A request body over ``max_body`` bytes is refused with 413 before it is parsed; a file uploaded to the page
    may have up to ``max_upload`` bytes (Gradio answers 413 past it, while it streams in), and so may all the files
    of one upload together (the body limit answers 413 past them and their envelope). At shutdown the service
    commits what it still queues and closes.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        service.close()

    app = FastAPI(title="Moderation Playground", description="OpenAI-compatible moderation with five labels.",
                  lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(Unrouted, routes=app.routes)
    app.add_middleware(BodyLimit, max_body=max_body,
                       bounds={UPLOAD_ROUTE: (max_upload + UPLOAD_ENVELOPE, "--max-upload")})
    app.add_middleware(ClientAddress)
    failed_logins = failed_logins or FailedLogins()
    app.add_middleware(CountRequests, metrics=service.metrics)
    app.include_router(feedback_router(service, reviewers, failed_logins))
    app.include_router(moderation_router(service, record=record_api, api_keys=api_keys))
    app.include_router(monitoring_router(service))
    serve_document(app)
    return gr.mount_gradio_app(
        app,
        build_page(service, logins=reviewers is not None).queue(max_size=service.limits.max_waiting),
        path="/",
        allowed_paths=[str(service.export_dir)],
        max_file_size=max_upload,
        auth=login_check(reviewers, failed_logins) if reviewers else None,
        auth_message="Log in with your reviewer name and password.",
        js=PAGE_JS,
    )


def parse_args(argv=None) -> argparse.Namespace:
    """The command line of ``python app.py``."""
    parser = argparse.ArgumentParser(prog="python app.py", description=__doc__.split("\n\n")[0])
    add_model_options(parser)
    add_settings_options(parser, chat=True)
    parser.add_argument("--db", default="feedback.db", help="SQLite file for predictions and verdicts")
    parser.add_argument("--versions", default="versions", metavar="DIR",
                        help="folder for the versions retrained from the page, with their logs and data")
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
    parser.add_argument("--no-record-api", action="store_true", help="don't keep the API's predictions")
    parser.add_argument("--auth", default=os.environ.get("MODERATION_AUTH"), metavar="FILE",
                        help="reviewers file (python -m feedback reviewers add NAME --file FILE): log in to review")
    parser.add_argument("--api-keys", default=os.environ.get("MODERATION_API_KEYS"), metavar="FILE",
                        help="keys file (python -m feedback api-keys add NAME --file FILE): /v1/moderations* then "
                        "needs 'Authorization: Bearer KEY'")
    parser.add_argument("--insecure", action="store_true", help="serve another address than localhost without --auth")
    return parser.parse_args(argv)


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
    try:
        reviewers = Reviewers(args.auth) if args.auth else None
        api_keys = ApiKeys(args.api_keys) if args.api_keys else None
        settings = settings_from(args)
        moderator = open_model(args)
        store = FeedbackStore(args.db)
        service = PlaygroundService(
            moderator, store, tempfile.mkdtemp(prefix="moderation-exports-"), settings=settings,
            limits=Limits(args.max_inputs, args.max_chars, args.max_waiting),
            max_batch_size=args.max_batch_size, max_wait=args.max_wait_ms / 1000, versions_dir=args.versions,
        )
    except (*USER_ERRORS, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    app = create_app(service, reviewers=reviewers, record_api=not args.no_record_api, max_body=args.max_body,
                     max_upload=args.max_upload, api_keys=api_keys)
    print(f"Moderation Playground: http://{args.host}:{args.port}/ (model: {moderator.name}, db: {args.db})",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    return 0
