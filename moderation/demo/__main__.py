"""``python -m moderation.demo``: build the demo model into the cache now (if it is not there yet), and print its
folder."""

import argparse
import sys

from . import ensure_demo_model


def main(argv=None) -> int:
    """Build the demo model (once) and print its folder."""
    argparse.ArgumentParser(prog="python -m moderation.demo", description=__doc__.split("\n\n")[0]).parse_args(argv)
    print(ensure_demo_model())
    return 0


if __name__ == "__main__":
    sys.exit(main())
