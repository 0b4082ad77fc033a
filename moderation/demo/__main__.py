"""``python -m moderation.demo``: build the demo model into the cache now (if it is not there yet)."""

import sys

from . import ensure_demo_model


def main() -> int:
    """Build the demo model (once) and print its folder."""
    print(ensure_demo_model())
    return 0


if __name__ == "__main__":
    sys.exit(main())
