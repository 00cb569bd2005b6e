"""Running one health probe: a command in the container, an HTTP GET, or a TCP connect."""

from __future__ import annotations

import asyncio
import contextlib

from voiyd.agent.runtimes.protocol import Runtime, RuntimeFailure
from voiyd.api.specs import HealthCheck

_TIMED_OUT = 124


async def probe(
    runtime: Runtime, container_id: str, check: HealthCheck, address: tuple[str, int] | None
) -> tuple[bool, str]:
    """(ok, message) of one probe; never raises."""
    try:
        async with asyncio.timeout(check.timeout_s):
            match check.type:
                case "cmd":
                    code = await runtime.exec_probe(container_id, check.cmd, check.timeout_s)
                    if code == _TIMED_OUT:
                        return False, f"command timed out after {check.timeout_s:g}s"
                    return code == 0, "" if code == 0 else f"command exited {code}"
                case "http":
                    return await _http(address, check.path)
                case "tcp":
                    return await _tcp(address)
    except TimeoutError:
        return False, f"{check.type} probe timed out after {check.timeout_s:g}s"
    except (OSError, RuntimeFailure) as exc:
        return False, f"{check.type} probe failed: {exc}"


async def _tcp(address: tuple[str, int] | None) -> tuple[bool, str]:
    if address is None:
        return False, "no address to probe"
    _, writer = await asyncio.open_connection(*address)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True, ""


async def _http(address: tuple[str, int] | None, path: str) -> tuple[bool, str]:
    if address is None:
        return False, "no address to probe"
    host, port = address
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: voiyd-probe\r\n\r\n".encode()
        )
        await writer.drain()
        line = (await reader.readline()).decode(errors="replace").split()
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if len(line) < 2 or not line[1].isdigit():
        return False, "not an HTTP answer"
    status = int(line[1])
    return 200 <= status < 400, "" if 200 <= status < 400 else f"HTTP {status}"
