"""voiyd-node refuses bad settings up front, with one clear line and a usage exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--name", "bad.name"], "not a valid name", id="name-with-a-dot"),
        pytest.param(["--name", "UPPER"], "not a valid name", id="uppercase-name"),
        pytest.param(["--name", "n1", "--label", "nolabel"], "is not key=value", id="bad-label"),
        pytest.param(["--name", "n1", "--label", "bad key=x"], "--label", id="bad-label-key"),
        pytest.param(["--name", "n1", "--runtime", "lxc"], "'lxc' is not one of", id="bad-runtime"),
    ],
)
def test_voiyd_node_refuses_bad_settings(args: list[str], needle: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "voiyd.agent.main", "--nats-url", "nats://127.0.0.1:1", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
