"""Identifiers and names: the one place that says what a valid name is and how ids are made.

Names are DNS-label-like tokens (``[a-z0-9][a-z0-9-]*``, at most 63 characters) so that they are
always safe as a NATS subject token and a KV key. Ids are random and unique; the caller passes
the randomness source in core code paths that must stay deterministic.
"""

from __future__ import annotations

import re
import uuid

NAME_MAX_LEN = 63
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def name_problem(value: str) -> str | None:
    """Why ``value`` is not a valid name, or None when it is."""
    if not value:
        return "must not be empty"
    if len(value) > NAME_MAX_LEN:
        return f"must be at most {NAME_MAX_LEN} characters (got {len(value)})"
    if not NAME_PATTERN.match(value):
        return (
            f"{value!r} is not a valid name: use lowercase letters, digits and '-', "
            "starting with a letter or digit (no '.', '*', '>' or spaces)"
        )
    return None


def new_id() -> str:
    """A new unique id (32 hex characters), used for events and requests."""
    return uuid.uuid4().hex
