"""CORE: what a label key and value may be (Kubernetes' rules, which operators already know).

Key: an optional DNS-subdomain prefix and ``/``, then a name of at most 63 characters made of
alphanumerics, ``-``, ``_`` and ``.``, starting and ending alphanumeric. Value: empty, or the same
shape as a name.
"""

from __future__ import annotations

import re

_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$")
_PREFIX_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_MAX_NAME = 63
_MAX_PREFIX = 253
MAX_LABELS = 64


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label key, or None."""
    if not key:
        return "must not be empty"
    prefix, sep, name = key.rpartition("/")
    if sep and (not prefix or len(prefix) > _MAX_PREFIX or not _PREFIX_RE.match(prefix)):
        return "the prefix before '/' must be a DNS subdomain such as example.com"
    if len(name) > _MAX_NAME:
        return f"the name part must be at most {_MAX_NAME} characters"
    if not _NAME_RE.match(name):
        return "use letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid label value, or None (the empty value is valid)."""
    if value == "":
        return None
    if len(value) > _MAX_NAME:
        return f"must be at most {_MAX_NAME} characters"
    if not _NAME_RE.match(value):
        return "use letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    return None
