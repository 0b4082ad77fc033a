"""Moderation Playground: moderate texts in the browser, flag wrong labels, curate and export them.

    python app.py [--model M] [--db feedback.db] [--host 127.0.0.1] [--port 7860] [--auth FILE]

The application lives in ``playground/``; ``python app.py --help`` lists every option.
"""

import sys

from playground.server import main

if __name__ == "__main__":
    sys.exit(main())
