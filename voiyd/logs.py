"""Logging setup for the daemons: one line per event on stderr, with the process name."""

from __future__ import annotations

import logging
import sys


def setup(process: str, level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {process} %(name)s: %(message)s",
    )
    logging.getLogger("nats").setLevel(logging.WARNING)
