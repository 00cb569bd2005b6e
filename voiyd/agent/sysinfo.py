"""What a node is: hostname, OS, architecture, CPUs and memory, read from the host."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

from voiyd import __version__
from voiyd.api.views import NodeCapacity


def total_memory() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def node_capacity() -> NodeCapacity:
    return NodeCapacity(cpus=float(os.cpu_count() or 1), memory=total_memory())


def node_labels(runtimes: list[str]) -> dict[str, str]:
    """The automatic labels: hostname, os, arch, runtimes, agent version."""
    labels = {
        "voiyd.io/hostname": socket.gethostname().split(".")[0][:63] or "unknown",
        "voiyd.io/os": platform.system().lower() or "unknown",
        "voiyd.io/arch": platform.machine().lower() or "unknown",
        "voiyd.io/agent-version": __version__,
    }
    for runtime in runtimes:
        labels[f"voiyd.io/runtime-{runtime}"] = "true"
    return labels
