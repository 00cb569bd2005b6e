"""CORE: manifests for ``apply``, ``diff`` and ``edit``: parse documents, validate every one.

A file holds one or more YAML documents (``---``), a JSON object, or a JSON array; a
``{"items": [...]}`` list (what ``get -o json`` prints) is unpacked, and the read-only parts of a
view (``status``, ``revision``, ``history``...) are dropped, so ``get -o yaml | apply -f -``
round-trips. Each document is validated against its kind's model (``task/v1``, ``set/v1``,
``volume/v1``); validation reports *every* problem, each as
``document N (kind/NAME): field: message``, and a name defined twice for the same kind.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

import yaml

from voiyd.api.specs import DOC_MODELS, KINDS, AnyDoc
from voiyd.api.validation import parse_model
from voiyd.errors import FieldError, InvalidRequestError

VIEW_ONLY_FIELDS = ("status", "revision", "generation", "history", "created_at", "updated_at")
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


def kind_of(doc: AnyDoc) -> str:
    """``task``, ``set`` or ``volume``."""
    return KINDS[doc.version]


def ref(doc: AnyDoc) -> str:
    """``set/web``."""
    return f"{kind_of(doc)}/{doc.name}"


def spec_of(doc: AnyDoc) -> dict[str, Any]:
    """The document as plain data with every default filled in: what ``diff`` compares."""
    return doc.model_dump(mode="json")


def live_spec(kind: str, view: Mapping[str, Any]) -> dict[str, Any]:
    """The spec part of a view (``version``, ``meta``, ``config``), shaped like ``spec_of``."""
    body = {k: view[k] for k in ("version", "meta", "config") if k in view}
    return spec_of(parse_model(DOC_MODELS[kind], body))


def spec_yaml(spec: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(spec), sort_keys=False, allow_unicode=True)


def spec_diff(
    live: Mapping[str, Any] | None, wanted: Mapping[str, Any], names: tuple[str, str]
) -> str:
    """A unified diff of the YAML of ``live`` (None: it does not exist) and ``wanted``.

    ``names`` label the two sides (``---`` and ``+++``); the text is empty when they are equal.
    """
    old = spec_yaml(live).splitlines(keepends=True) if live is not None else []
    new = spec_yaml(wanted).splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, fromfile=names[0], tofile=names[1]))


def check_document(index: int, doc: Any) -> AnyDoc | list[FieldError]:
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
        return parse_model(DOC_MODELS[KINDS[version]], body)
    except InvalidRequestError as exc:
        return [FieldError(f"{label}: {f.loc}", f.message) for f in exc.fields]


def _raw_ref(doc: Any) -> str | None:
    """``kind/NAME`` of a document that did not validate, when it says that much."""
    if not isinstance(doc, Mapping) or doc.get("version") not in KINDS:
        return None
    meta = doc.get("meta")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"{KINDS[doc['version']]}/{name}" if isinstance(name, str) else None


def validate_documents(docs: list[Any], source: str) -> list[AnyDoc]:
    """All documents as models, or one ``InvalidRequestError`` listing every problem."""
    valid: list[AnyDoc] = []
    problems: list[FieldError] = []
    first_seen: dict[str, int] = {}
    for index, doc in enumerate(docs, start=1):
        result = check_document(index, doc)
        key = ref(result) if not isinstance(result, list) else _raw_ref(doc)
        if isinstance(result, list):
            problems += result
        if key is not None and key in first_seen:
            label = document_label(index, doc)
            message = f"{key} is also defined in document {first_seen[key]}"
            problems.append(FieldError(f"{label}: meta.name", message))
        if key is not None:
            first_seen.setdefault(key, index)
        if not isinstance(result, list):
            valid.append(result)
    if len(problems) == 1:
        raise InvalidRequestError(f"{problems[0].loc}: {problems[0].message}", problems)
    if problems:
        raise InvalidRequestError(
            f"{source}: {len(problems)} problems; nothing was applied", problems
        )
    return valid
