"""What a label key and value may be (voiyd.api.labels), Kubernetes' rules."""

from __future__ import annotations

import pytest

from voiyd.api.labels import label_key_problem, label_value_problem


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("app", id="name"),
        pytest.param("a", id="one-char"),
        pytest.param("App_1.x-y", id="mixed-chars"),
        pytest.param("a" * 63, id="63-chars"),
        pytest.param("example.com/app", id="prefixed"),
        pytest.param("a-b.example.com/App", id="dashed-prefix"),
        pytest.param("x" * 253 + "/a", id="253-char-prefix"),
    ],
)
def test_label_key_is_valid(key: str) -> None:
    assert label_key_problem(key) is None


@pytest.mark.parametrize(
    ("key", "says"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("bad key", "letters, digits", id="space"),
        pytest.param("-app", "starting and ending", id="leading-dash"),
        pytest.param("app.", "starting and ending", id="trailing-dot"),
        pytest.param("a" * 64, "at most 63", id="64-chars"),
        pytest.param("/app", "DNS subdomain", id="empty-prefix"),
        pytest.param("Example.com/app", "DNS subdomain", id="uppercase-prefix"),
        pytest.param("ex_ample.com/app", "DNS subdomain", id="underscore-prefix"),
        pytest.param("x" * 254 + "/a", "DNS subdomain", id="254-char-prefix"),
        pytest.param("example.com/", "letters, digits", id="empty-name"),
        pytest.param("a/b/c", "DNS subdomain", id="two-slashes"),
        pytest.param("app*", "letters, digits", id="wildcard"),
    ],
)
def test_label_key_problem_says_what_is_wrong(key: str, says: str) -> None:
    problem = label_key_problem(key)
    assert problem is not None
    assert says in problem


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty-is-valid"),
        pytest.param("web", id="word"),
        pytest.param("v1.2_3-x", id="mixed-chars"),
        pytest.param("v" * 63, id="63-chars"),
    ],
)
def test_label_value_is_valid(value: str) -> None:
    assert label_value_problem(value) is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        pytest.param("v" * 64, "at most 63", id="64-chars"),
        pytest.param("two words", "letters, digits", id="space"),
        pytest.param("-x", "starting and ending", id="leading-dash"),
        pytest.param("x_", "starting and ending", id="trailing-underscore"),
        pytest.param("a/b", "letters, digits", id="slash"),
    ],
)
def test_label_value_problem_says_what_is_wrong(value: str, says: str) -> None:
    problem = label_value_problem(value)
    assert problem is not None
    assert says in problem
