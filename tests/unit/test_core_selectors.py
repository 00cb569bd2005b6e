"""Label selectors (voiyd.api.selectors): the grammar, its errors, what each operator matches."""

from __future__ import annotations

import re

import pytest

from voiyd.api.selectors import (
    Requirement,
    Selector,
    SelectorError,
    parse_selector,
    selector_from_mapping,
)


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        pytest.param("app=web", [Requirement("app", "=", ("web",))], id="equals"),
        pytest.param("app==web", [Requirement("app", "=", ("web",))], id="double-equals"),
        pytest.param("app!=web", [Requirement("app", "!=", ("web",))], id="not-equals"),
        pytest.param("app=", [Requirement("app", "=", ("",))], id="equals-empty-value"),
        pytest.param(
            "tier in (b, a,a)", [Requirement("tier", "in", ("a", "b"))], id="in-sorted-unique"
        ),
        pytest.param("tier notin (a)", [Requirement("tier", "notin", ("a",))], id="notin"),
        pytest.param("gpu", [Requirement("gpu", "exists")], id="exists"),
        pytest.param("!gpu", [Requirement("gpu", "!exists")], id="not-exists"),
        pytest.param("! gpu", [Requirement("gpu", "!exists")], id="not-exists-spaced"),
        pytest.param(
            "example.com/team=core",
            [Requirement("example.com/team", "=", ("core",))],
            id="prefixed-key",
        ),
        pytest.param(
            " app = web , tier in (a,b) , !gpu ",
            [
                Requirement("app", "=", ("web",)),
                Requirement("tier", "in", ("a", "b")),
                Requirement("gpu", "!exists"),
            ],
            id="several-with-spaces",
        ),
    ],
)
def test_parse_selector_reads_every_operator(text: str, requirements: list[Requirement]) -> None:
    assert parse_selector(text) == Selector(tuple(requirements))


@pytest.mark.parametrize("text", ["", "   "], ids=["empty", "blank"])
def test_parse_selector_of_nothing_selects_everything(text: str) -> None:
    selector = parse_selector(text)
    assert selector.empty
    assert selector.matches({})
    assert selector.matches({"any": "thing"})


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("tier in (a,b", "unbalanced '('", id="unbalanced-open"),
        pytest.param("tier in a,b)", "unbalanced ')'", id="unbalanced-close"),
        pytest.param("app=web,,tier=a", "empty requirement", id="empty-requirement"),
        pytest.param("app=web,", "empty requirement", id="trailing-comma"),
        pytest.param("tier in ()", "empty value", id="empty-set"),
        pytest.param("tier in (a,,b)", "empty value", id="empty-set-member"),
        pytest.param("app=web=x", "label value 'web=x'", id="two-equals"),
        pytest.param("app web", "cannot parse", id="two-words"),
        pytest.param("tier in a", "cannot parse", id="in-without-parentheses"),
        pytest.param("=web", "cannot parse", id="no-key"),
        pytest.param("bad key!=x", "cannot parse", id="key-with-space"),
        pytest.param("-app=x", "label key '-app'", id="bad-key"),
        pytest.param("app=-x", "label value '-x'", id="bad-value"),
        pytest.param("app in (ok,no way)", "label value 'no way'", id="bad-set-value"),
        pytest.param("a" * 64, "label key", id="key-64-chars"),
    ],
)
def test_parse_selector_rejects_malformed_text(text: str, says: str) -> None:
    with pytest.raises(SelectorError, match=re.escape(says)):
        parse_selector(text)


def test_selector_error_is_a_value_error_so_pydantic_reports_it() -> None:
    assert issubclass(SelectorError, ValueError)


WEB = {"app": "web", "tier": "front"}
DB = {"app": "db", "tier": "back", "ssd": ""}
BARE: dict[str, str] = {}


@pytest.mark.parametrize(
    ("text", "web", "db", "bare"),
    [
        pytest.param("app=web", True, False, False, id="equals"),
        pytest.param("app!=web", False, True, True, id="not-equals-matches-absent"),
        pytest.param("tier in (front,side)", True, False, False, id="in"),
        pytest.param("tier notin (front)", False, True, True, id="notin-matches-absent"),
        pytest.param("ssd", False, True, False, id="exists-with-empty-value"),
        pytest.param("!ssd", True, False, True, id="not-exists"),
        pytest.param("ssd=", False, True, False, id="equals-empty"),
        pytest.param("app=web,tier=back", False, False, False, id="all-must-hold"),
        pytest.param("app,tier notin (back)", True, False, False, id="exists-and-notin"),
    ],
)
def test_selector_matches_labels(text: str, web: bool, db: bool, bare: bool) -> None:
    selector = parse_selector(text)
    assert (selector.matches(WEB), selector.matches(DB), selector.matches(BARE)) == (web, db, bare)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        pytest.param("app==web", "app=web", id="double-equals"),
        pytest.param(" app != web ", "app!=web", id="spaces"),
        pytest.param("tier in (b,a)", "tier in (a,b)", id="sorted-set"),
        pytest.param("!gpu,gpu2", "!gpu,gpu2", id="exists"),
    ],
)
def test_selector_prints_in_canonical_form_that_parses_back(text: str, canonical: str) -> None:
    selector = parse_selector(text)
    assert str(selector) == canonical
    assert parse_selector(str(selector)) == selector


def test_selector_from_mapping_is_sorted_equalities() -> None:
    selector = selector_from_mapping({"zone": "a", "disk": "ssd"})
    assert str(selector) == "disk=ssd,zone=a"
    assert selector.matches({"disk": "ssd", "zone": "a", "extra": "x"})
    assert not selector.matches({"disk": "ssd"})


@pytest.mark.parametrize(
    "mapping",
    [
        pytest.param({"bad key": "x"}, id="bad-key"),
        pytest.param({"disk": "not ok"}, id="bad-value"),
    ],
)
def test_selector_from_mapping_rejects_bad_labels(mapping: dict[str, str]) -> None:
    with pytest.raises(SelectorError):
        selector_from_mapping(mapping)
