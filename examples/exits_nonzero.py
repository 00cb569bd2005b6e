"""Print every voiyd task that exits with a non-zero code, using only nats-py and msgpack.

    python examples/exits_nonzero.py [--server nats://127.0.0.1:4222] [--new]

It reads voiyd's event log (the JetStream stream ``VOIYD_EVENTS``) through an ordered consumer
on ``voiyd.events.task.*``: from the first event (or, with ``--new``, only what happens from now
on), then follows it until Ctrl-C. Each ``task.exited`` event whose exit code is not 0 prints
one line: ``<task> exited with code <code> on <node> (seq <n>, <time>)``. The event type is in
the ``Voiyd-Event`` header, so other events are skipped without being decoded.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import msgpack
import nats
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy


async def on_event(msg: Msg) -> None:
    if (msg.headers or {}).get("Voiyd-Event") != "task.exited":
        return
    event = msgpack.unpackb(msg.data)
    data = event["data"]
    if data["exit_code"] != 0:
        seq = msg.metadata.sequence.stream
        print(
            f"{data['name']} exited with code {data['exit_code']} on {data['node']} "
            f"(seq {seq}, {event['at']})",
            flush=True,
        )


async def main(server: str, new: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    nc = await nats.connect(server)
    js = nc.jetstream()
    start = DeliverPolicy.NEW if new else DeliverPolicy.ALL
    await js.subscribe(
        "voiyd.events.task.*",
        stream="VOIYD_EVENTS",
        cb=on_event,
        ordered_consumer=True,
        idle_heartbeat=5,
        config=ConsumerConfig(deliver_policy=start),
    )
    await stop.wait()
    await nc.drain()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="nats://127.0.0.1:4222", help="a NATS URL")
    parser.add_argument("--new", action="store_true", help="only exits from now on")
    args = parser.parse_args()
    asyncio.run(main(args.server, args.new))
