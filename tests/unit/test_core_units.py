"""Memory sizes, durations and ages as operators write and read them (voiyd.api.units)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from voiyd.api.units import MAX_MEMORY, format_memory, human_age, parse_duration, parse_memory

Ki, Mi, Gi, Ti = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(
    ("text", "size"),
    [
        pytest.param("1048576", Mi, id="bare-bytes"),
        pytest.param("10b", 10, id="b"),
        pytest.param("1k", Ki, id="k"),
        pytest.param("1KiB", Ki, id="KiB"),
        pytest.param("256m", 256 * Mi, id="m"),
        pytest.param("256MB", 256 * Mi, id="MB-is-binary-like-docker"),
        pytest.param("256Mi", 256 * Mi, id="Mi"),
        pytest.param("1g", Gi, id="g"),
        pytest.param("2Gi", 2 * Gi, id="Gi"),
        pytest.param("1t", Ti, id="t"),
        pytest.param("1.5Gi", 3 * Gi // 2, id="fraction"),
        pytest.param(" 64 mi ", 64 * Mi, id="spaces-and-lowercase"),
        pytest.param("0", 0, id="zero"),
    ],
)
def test_parse_memory_reads_binary_units(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("m", id="unit-only"),
        pytest.param("12parsecs", id="unknown-unit"),
        pytest.param("-1m", id="negative"),
        pytest.param("1e6", id="exponent"),
        pytest.param("1.m", id="dangling-point"),
        pytest.param("1 2m", id="two-numbers"),
        pytest.param("9" * 400, id="hundreds-of-digits"),
        pytest.param(f"{MAX_MEMORY // Ti + 1}Ti", id="over-int64"),
    ],
)
def test_parse_memory_rejects_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="memory"):
        parse_memory(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        pytest.param(0, "0", id="zero"),
        pytest.param(1000, "1000", id="not-a-multiple"),
        pytest.param(Ki, "1Ki", id="Ki"),
        pytest.param(1536 * Ki, "1536Ki", id="not-whole-Mi"),
        pytest.param(256 * Mi, "256Mi", id="Mi"),
        pytest.param(3 * Gi, "3Gi", id="Gi"),
        pytest.param(2 * Ti, "2Ti", id="Ti"),
    ],
)
def test_format_memory_is_the_shortest_exact_form(size: int, text: str) -> None:
    assert format_memory(size) == text
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("90", 90, id="bare-seconds"),
        pytest.param("1.5", 1.5, id="bare-fraction"),
        pytest.param("500ms", 0.5, id="ms"),
        pytest.param("30s", 30, id="s"),
        pytest.param("10m", 600, id="m"),
        pytest.param("2h", 7200, id="h"),
        pytest.param("2d", 172800, id="d"),
        pytest.param("1h30m", 5400, id="compound"),
        pytest.param("1m30s500ms", 90.5, id="three-parts"),
        pytest.param(" 5m ", 300, id="spaces"),
    ],
)
def test_parse_duration_reads_units_and_compounds(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("m", id="unit-only"),
        pytest.param("10x", id="unknown-unit"),
        pytest.param("10m garbage", id="trailing-garbage"),
        pytest.param("-5s", id="negative"),
        pytest.param("1h 30m", id="inner-space"),
        pytest.param("9" * 400 + "d", id="hundreds-of-digits"),
        pytest.param("9" * 400, id="hundreds-of-bare-digits"),
        pytest.param("99999999999d", id="beyond-timedelta"),
    ],
)
def test_parse_duration_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "age"),
    [
        pytest.param(-5, "0s", id="clock-skew-is-zero"),
        pytest.param(0, "0s", id="zero"),
        pytest.param(45.9, "45s", id="seconds-truncated"),
        pytest.param(119, "119s", id="under-two-minutes"),
        pytest.param(120, "2m", id="two-minutes"),
        pytest.param(7199, "119m", id="under-two-hours"),
        pytest.param(7200, "2h", id="two-hours"),
        pytest.param(172799, "47h", id="under-two-days"),
        pytest.param(172800, "2d", id="two-days"),
        pytest.param(400 * 86400, "400d", id="long-ago"),
    ],
)
def test_human_age_is_kubectl_style(seconds: float, age: str) -> None:
    assert human_age(seconds) == age
