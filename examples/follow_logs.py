"""Follow one voiyd task's output straight from JetStream, using only nats-py and msgpack.

    python examples/follow_logs.py TASK [--server nats://127.0.0.1:4222]

Agents publish each task's output in batches to ``voiyd.logs.<node>.<task>`` (stream
``VOIYD_LOGS``); an ordered consumer on ``voiyd.logs.*.<task>`` reads every node's batches in the
order they were stored. Each line is written to stdout as the task wrote it (text, or bytes
when it was not UTF-8; a long line comes in parts, ``partial`` on all but the last). The program
exits when a batch marked ``eof`` arrives: the container's output has ended. (A task that is
restarted writes more after that; voiydctl logs -f, through the log relay, knows when a task
has ended for good.)
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys

import msgpack
import nats
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


async def main(task: str, server: str) -> None:
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    out = sys.stdout.buffer

    async def on_batch(msg: Msg) -> None:
        batch = msgpack.unpackb(msg.data)
        for line in batch["lines"]:
            text = line["line"]
            data = text.encode() if isinstance(text, str) else text
            out.write(data if line.get("partial") else data + b"\n")
        out.flush()
        if batch.get("eof"):
            done.set()

    nc = await nats.connect(server)
    js = nc.jetstream()
    await js.subscribe(
        f"voiyd.logs.*.{task}",
        stream="VOIYD_LOGS",
        cb=on_batch,
        ordered_consumer=True,
        idle_heartbeat=5,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    await done.wait()
    await nc.drain()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", help="the task's name")
    parser.add_argument("--server", default="nats://127.0.0.1:4222", help="a NATS URL")
    args = parser.parse_args()
    if not NAME.match(args.task):
        parser.error(f"{args.task!r} is not a task name (lowercase letters, digits and '-')")
    asyncio.run(main(args.task, args.server))
