"""Command line: ``python -m feedback export|stats|forget`` on a feedback database, ``merge`` of replicas'
databases, ``reviewers add`` for logins, ``api-keys add|revoke|list`` for the REST API's keys."""

import argparse
import getpass
import json
import os
import sqlite3
import sys

from moderation.errors import InvalidInput

from .api_keys import add_api_key, api_key_names, revoke_api_key
from .export import FORMATS, export_jsonl, write_export
from .merge import merge
from .reviewers import add_reviewer
from .rows import SPLITS, STATUSES
from .stats import as_figure, as_share, summary
from .store import FeedbackStore


def main(argv=None) -> int:
    """Run the command line and return its exit code."""
    parser = argparse.ArgumentParser(prog="python -m feedback", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write verdicts as jsonl")
    export.add_argument("out", metavar="OUT.jsonl", help="file to write, or - for stdout")
    export.add_argument("--format", choices=FORMATS, default="oig")
    export.add_argument("--status", choices=STATUSES, help="only verdicts with this status")
    export.add_argument("--since", metavar="DATE", help="only verdicts given since, like 2026-11-29")
    export.add_argument("--split", choices=SPLITS, help="only the texts of this split (train: what retraining learns "
                        "from; test: what judges a version)")
    stats = commands.add_parser("stats", help="counts, agreement between reviewers, the queue")
    stats.add_argument("--json", action="store_true", help="print every figure as JSON")
    forget = commands.add_parser("forget", help="erase a text everywhere the database holds it")
    which = forget.add_mutually_exclusive_group(required=True)
    which.add_argument("--text", help="the text to erase")
    which.add_argument("--match", metavar="PATTERN", help="erase every text that contains PATTERN (case aside)")
    for command in (export, stats, forget):
        command.add_argument("--db", default="feedback.db", help="database file (default feedback.db)")
    reviewers = commands.add_parser("reviewers", help="manage the reviewers who may log in")
    reviewers.add_argument("action", choices=["add"], help="add a reviewer, or set a reviewer's new password")
    reviewers.add_argument("name")
    reviewers.add_argument("--file", required=True, help="the reviewers file given to app.py --auth")
    merging = commands.add_parser("merge", help="merge the databases of several app replicas into one")
    merging.add_argument("sources", nargs="+", metavar="SOURCE.db", help="the replicas' database files (only read)")
    merging.add_argument("--into", required=True, metavar="TARGET.db", help="the database to add them to")
    api_keys = commands.add_parser("api-keys", help="manage the keys that may call /v1/moderations")
    key_actions = api_keys.add_subparsers(dest="action", required=True)
    for action, help in (("add", "make a new key for NAME (its old one stops working)"),
                         ("revoke", "remove NAME's key (a running server refuses it within seconds)"),
                         ("list", "the names that have a key (never their hashes)")):
        command = key_actions.add_parser(action, help=help)
        if action != "list":
            command.add_argument("name")
        command.add_argument("--file", required=True, help="the keys file given to app.py --api-keys")
    args = parser.parse_args(argv)
    if args.command == "reviewers":
        return run_reviewers(args)
    if args.command == "api-keys":
        return run_api_keys(args)
    if args.command == "merge":
        return run_merge(args)
    if not os.path.exists(args.db):
        print(f"No feedback database at {args.db}: pass --db with the app's database file.", file=sys.stderr)
        return 2
    try:
        with FeedbackStore(args.db) as store:
            {"export": run_export, "stats": run_stats, "forget": run_forget}[args.command](store, args)
    except (InvalidInput, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 0


def run_reviewers(args) -> int:
    """Ask for the password (twice at a terminal, once from a pipe) and store its hash."""
    if sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.name}: ")
        if getpass.getpass("Again: ") != password:
            print("The passwords differ: nothing was changed.", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\n")
    try:
        add_reviewer(args.file, args.name, password)
    except (InvalidInput, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(f"Reviewer {args.name} can now log in (file: {args.file}).", file=sys.stderr)
    return 0


def run_merge(args) -> int:
    """Merge the sources into the target and say what was added."""
    try:
        added = merge(args.sources, args.into)
    except (InvalidInput, OSError, sqlite3.DatabaseError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    print(f"Merged {len(args.sources)} databases into {args.into}: " +
          ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in added.items()))
    return 0


def run_api_keys(args) -> int:
    """Add a key (printed once, alone on the last line), revoke one, or list the names."""
    try:
        print(KEY_ACTIONS[args.action](args))
    except (InvalidInput, OSError) as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    return 0


def add_key(args) -> str:
    key = add_api_key(args.file, args.name)
    return f"New API key for {args.name} (file: {args.file}); it is shown only now, keep it secret:\n{key}"


def revoke_key(args) -> str:
    left = revoke_api_key(args.file, args.name)
    revoked = (f"Revoked the API key of {args.name} (file: {args.file}, {left} keys left): a server running on "
               "the file refuses it within seconds.")
    if left:
        return revoked
    return (f"{revoked}\nThe file lists no key now: a server running on it refuses every request to "
            "/v1/moderations, and app.py starts on it again once a key is added.")


def list_keys(args) -> str:
    names = api_key_names(args.file)
    return "\n".join(names) if names else f"{args.file} lists no API keys."


KEY_ACTIONS = {"add": add_key, "revoke": revoke_key, "list": list_keys}


def run_export(store, args):
    """Export to stdout, or to a file that only appears once it is complete."""
    options = {"format": args.format, "status": args.status, "since": args.since, "split": args.split}
    if args.out == "-":
        sys.stdout.reconfigure(encoding="utf-8")
        count = export_jsonl(store, sys.stdout, **options)
    else:
        count = write_export(store, args.out, **options)
    print(f"Exported {count} rows to {'stdout' if args.out == '-' else args.out}", file=sys.stderr)


def run_forget(store, args):
    """Erase the text (or the texts that match) and say what was removed; the text itself is not printed."""
    removed = store.erasure.forget(text=args.text, match=args.match)
    print(f"Erased from {args.db}: {removed['predictions']} predictions, {removed['verdicts']} verdicts, "
          f"{removed['final_labels']} final labels, {removed['splits']} splits, {removed['shadow_predictions']} "
          f"shadow predictions, {removed['evaluation_items']} evaluation items and {removed['idempotency_keys']} "
          "idempotency keys.")
    if removed["templates"]:
        print(f"{removed['templates']} prompt templates hold it among their examples: they are kept (predictions "
              "name them). Publish a prompt without it.", file=sys.stderr)
    if not removed["log_emptied"]:
        print("Another program (the app?) was reading the database, so its write-ahead log may still hold the text: "
              "run forget again when it is idle, or stopped.", file=sys.stderr)


def run_stats(store, args):
    """Print the store's figures, as text or JSON."""
    stats = summary(store)
    if args.json:
        print(json.dumps(stats, indent=2, ensure_ascii=False))
        return
    agreement = stats["agreement"]
    print(f"Predictions: {stats['predictions']} ({stats['queue']} awaiting a first verdict)")
    print(f"Verdicts: {stats['verdicts']} (reviewers agree with the model on {as_share(stats['model_agreement'])})")
    print(f"Agreement between reviewers: Krippendorff's alpha (ordinal) {as_figure(agreement['krippendorff_alpha'])} "
          f"on {agreement['items']} texts judged by several")
    for pair in agreement["pairs"]:
        print(f"  {pair['a']} and {pair['b']}: Cohen's kappa {as_figure(pair['cohen_kappa'])} on {pair['n']}")
    for title, counts in (
        ("Model labels", stats["predictions_by_label"]),
        ("Reviewer labels", stats["verdicts_by_label"]),
        ("Status", stats["verdicts_by_status"]),
        ("Verdicts per reviewer", stats["by_reviewer"]),
    ):
        print(f"\n{title}:")
        for name, count in counts.items():
            print(f"  {name}: {count}")


if __name__ == "__main__":
    sys.exit(main())
