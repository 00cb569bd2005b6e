"""A bare relay: the API's network path with none of voiyd's work, run as its own process.

``python -m benchmarks.relay NATS_URL`` answers requests on ``RELAY_SUBJECT`` by publishing the
request body to the ``BENCH_RAW`` stream (awaiting the ack) and replying with the ack's sequence
(a msgpack map, like the API's replies), one task per request. A create through the API takes the
same hops (client -> server -> JetStream -> server -> client), so this baseline tells the cost of
the hops apart from the cost of voiyd's own work.
SIGTERM or SIGINT stops it (the connection is drained).
"""

from __future__ import annotations

import asyncio
import signal
import sys

import msgpack
import nats
from nats.aio.msg import Msg

RELAY_SUBJECT = "bench.relay"
RELAY_QUEUE = "bench-relay"
RAW_STREAM = "BENCH_RAW"
RELAY_PUBLISH_PREFIX = "bench.raw.relay"
_DRAIN_TIMEOUT_S = 5.0


async def serve(url: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    nc = await nats.connect(url, name="voiyd-bench-relay")
    js = nc.jetstream()
    count = 0
    async with asyncio.TaskGroup() as tg:

        async def relay(msg: Msg, subject: str) -> None:
            ack = await js.publish(subject, msg.data, stream=RAW_STREAM)
            await msg.respond(msgpack.packb({"seq": ack.seq}))

        async def on_request(msg: Msg) -> None:
            nonlocal count
            count += 1  # one subject per request, like one subject per aggregate
            tg.create_task(relay(msg, f"{RELAY_PUBLISH_PREFIX}.{count}"))

        await nc.subscribe(RELAY_SUBJECT, queue=RELAY_QUEUE, cb=on_request)
        print("relay ready", flush=True)
        await stop.wait()
    async with asyncio.timeout(_DRAIN_TIMEOUT_S):
        await nc.drain()


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m benchmarks.relay NATS_URL", file=sys.stderr)
        return 2
    asyncio.run(serve(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
