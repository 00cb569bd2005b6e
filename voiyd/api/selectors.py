"""CORE: label selectors, as operators write them (kubectl habits), and their matching.

Grammar (comma separated requirements, all must hold)::

    key=value   key==value   key!=value   key in (a,b)   key notin (a,b)   key   !key

``matches`` is the one definition of what a selector means; the server's ``list`` and the
scheduler's placement both use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from voiyd.api.labels import label_key_problem, label_value_problem

Operator = Literal["=", "!=", "in", "notin", "exists", "!exists"]

_SET_RE = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*(?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s,()]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[^\s!=,()]+)\s*$")


class SelectorError(ValueError):
    """A selector that does not parse; the message says which part and why."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        match self.op:
            case "exists":
                return present
            case "!exists":
                return not present
            case "=":
                return present and labels[self.key] == self.values[0]
            case "!=":
                return not present or labels[self.key] != self.values[0]
            case "in":
                return present and labels[self.key] in self.values
            case "notin":
                return not present or labels[self.key] not in self.values

    def __str__(self) -> str:
        match self.op:
            case "exists":
                return self.key
            case "!exists":
                return f"!{self.key}"
            case "=" | "!=":
                return f"{self.key}{self.op}{self.values[0]}"
            case "in" | "notin":
                return f"{self.key} {self.op} ({','.join(self.values)})"


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError("unbalanced ')'")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise SelectorError("unbalanced '('")
    parts.append("".join(current))
    return parts


def _check_key(key: str) -> str:
    problem = label_key_problem(key)
    if problem:
        raise SelectorError(f"label key {key!r}: {problem}")
    return key


def _check_value(value: str) -> str:
    problem = label_value_problem(value)
    if problem:
        raise SelectorError(f"label value {value!r}: {problem}")
    return value


def _parse_requirement(part: str) -> Requirement:
    if m := _SET_RE.match(part):
        raw_values = [v.strip() for v in m["values"].split(",")]
        if not raw_values or any(v == "" for v in raw_values):
            raise SelectorError(f"{part.strip()!r}: empty value in the set")
        op: Operator = "in" if m["op"] == "in" else "notin"
        values = tuple(sorted({_check_value(v) for v in raw_values}))
        return Requirement(_check_key(m["key"]), op, values)
    if m := _EQ_RE.match(part):
        eq: Operator = "!=" if m["op"] == "!=" else "="
        return Requirement(_check_key(m["key"]), eq, (_check_value(m["value"]),))
    if m := _EXISTS_RE.match(part):
        ex: Operator = "!exists" if m["neg"] else "exists"
        return Requirement(_check_key(m["key"]), ex)
    raise SelectorError(
        f"cannot parse {part.strip()!r}: expected key=value, key!=value, "
        "key in (a,b), key notin (a,b), key or !key"
    )


def parse_selector(text: str) -> Selector:
    """Parse a selector; an empty string selects everything."""
    if not text.strip():
        return Selector()
    reqs = []
    for part in _split_top_level(text):
        if not part.strip():
            raise SelectorError(f"empty requirement in {text!r}")
        reqs.append(_parse_requirement(part))
    return Selector(tuple(reqs))


def selector_from_mapping(labels: Mapping[str, str]) -> Selector:
    """The equality selector that a ``{key: value}`` mapping means (upstream's node_selector)."""
    return Selector(
        tuple(
            Requirement(_check_key(k), "=", (_check_value(v),)) for k, v in sorted(labels.items())
        )
    )
