"""What every command-line entry point shares: a --log_level option, logging set-up,
and bad input reported as one line ("prog: error: ...") instead of a traceback."""

import argparse
import contextlib
import logging
import sys
from typing import Optional

from espnet2_merit.errors import MeritInputError

LOG_FORMAT = "%(asctime)s (%(name)s:%(lineno)d) %(levelname)s: %(message)s"


def add_log_level(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log_level",
        type=lambda x: x.upper(),
        default="INFO",
        choices=("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"),
    )


@contextlib.contextmanager
def entry_point(prog: str, log_level: Optional[str] = "INFO"):
    """Run the body of ``main``: logging configured (unless ``log_level`` is None:
    ESPnet's trainer configures its own), ``MeritInputError`` -> one line and
    exit status 1."""
    if log_level is not None:
        logging.basicConfig(level=log_level, format=LOG_FORMAT)
    try:
        yield
    except MeritInputError as e:
        sys.exit(f"{prog}: error: {e}")
