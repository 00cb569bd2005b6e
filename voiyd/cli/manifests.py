"""CORE: manifests for ``apply -f``: parse YAML/JSON documents and validate every one of them.

A file holds one or more YAML documents (``---``), a JSON object, or a JSON array; a
``{"items": [...]}`` list (what ``get -o json`` prints) is unpacked, and the read-only parts of a
view (``status``, ``revision``...) are dropped, so ``get -o yaml | apply -f -`` round-trips.
Validation reports *every* problem, each as ``document N (task/NAME): field: message``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import yaml

from voiyd.api.specs import KINDS, TaskDoc
from voiyd.api.validation import parse_model
from voiyd.errors import FieldError, InvalidRequestError

VIEW_ONLY_FIELDS = ("status", "revision", "generation", "created_at", "updated_at")
SUPPORTED = ", ".join(KINDS)


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _yaml_problem(exc: yaml.YAMLError, source: str) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{source}: not valid YAML: {where}{problem}"


def _parse(text: str, source: str) -> list[Any]:
    json_error: json.JSONDecodeError | None = None
    if _looks_like_json(text):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as exc:
            json_error = exc  # maybe flow-style YAML; if YAML fails too, this is the error
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        if json_error is not None:
            e = json_error
            raise InvalidRequestError(
                f"{source}: not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}"
            ) from None
        raise InvalidRequestError(_yaml_problem(exc, source)) from None


def _is_list_wrapper(doc: Any) -> bool:
    return isinstance(doc, Mapping) and isinstance(doc.get("items"), list) and "meta" not in doc


def load_documents(text: str, source: str) -> list[Any]:
    """Every document in ``text``, in order (empty YAML documents skipped)."""
    out: list[Any] = []
    for doc in _parse(text, source):
        if doc is None:
            continue
        if isinstance(doc, list):
            out.extend(doc)
        elif _is_list_wrapper(doc):
            out.extend(doc["items"])
        else:
            out.append(doc)
    if not out:
        raise InvalidRequestError(f"{source}: no documents found")
    return out


def document_label(index: int, doc: Any) -> str:
    """``document 2 (task/web)``; as much as the document says about itself."""
    if not isinstance(doc, Mapping):
        return f"document {index}"
    version = doc.get("version")
    kind = KINDS.get(str(version)) or (str(version).split("/")[0] if version else "?")
    meta = doc.get("meta")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"document {index} ({kind}/{name})" if isinstance(name, str) else f"document {index}"


def check_document(index: int, doc: Any) -> TaskDoc | list[FieldError]:
    label = document_label(index, doc)
    if not isinstance(doc, Mapping):
        found = type(doc).__name__
        return [FieldError(label, f"expected a mapping with version, meta and config, not {found}")]
    version = doc.get("version")
    if version is None:
        return [FieldError(f"{label}: version", f"required field is missing (use {SUPPORTED})")]
    if version not in KINDS:
        message = f"unsupported kind {version!r}: this release supports {SUPPORTED}"
        return [FieldError(f"{label}: version", message)]
    body = {k: v for k, v in doc.items() if k not in VIEW_ONLY_FIELDS}
    try:
        return parse_model(TaskDoc, body)
    except InvalidRequestError as exc:
        return [FieldError(f"{label}: {f.loc}", f.message) for f in exc.fields]


def validate_documents(docs: list[Any], source: str) -> list[TaskDoc]:
    """All documents as models, or one ``InvalidRequestError`` listing every problem."""
    valid: list[TaskDoc] = []
    problems: list[FieldError] = []
    first_seen: dict[str, int] = {}
    for index, doc in enumerate(docs, start=1):
        result = check_document(index, doc)
        if isinstance(result, list):
            problems += result
            continue
        if result.name in first_seen:
            label = document_label(index, doc)
            message = f"task/{result.name} is also defined in document {first_seen[result.name]}"
            problems.append(FieldError(f"{label}: meta.name", message))
        first_seen.setdefault(result.name, index)
        valid.append(result)
    if len(problems) == 1:
        raise InvalidRequestError(f"{problems[0].loc}: {problems[0].message}", problems)
    if problems:
        raise InvalidRequestError(
            f"{source}: {len(problems)} problems; nothing was applied", problems
        )
    return valid
