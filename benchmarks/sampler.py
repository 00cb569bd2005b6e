"""A sampling profiler for a whole process: where CPU time goes, without cProfile's distortion.

``python -m benchmarks.sampler OUT MODULE [ARGS...]`` runs ``MODULE`` as ``__main__`` and, every
millisecond of CPU time (``SIGPROF``), notes the running function and every function on the
stack. At exit it writes two lists to ``OUT``: own time (the function itself was running) and
inclusive time (it was on the stack). cProfile charges a fixed cost to every call, so it
inflates code made of many small calls (pydantic validators, nats-py's parser); sampling does not.
"""

from __future__ import annotations

import atexit
import collections
import runpy
import signal
import sys
from pathlib import Path
from types import FrameType

INTERVAL_S = 0.001
TOP_OWN = 60
TOP_INCLUSIVE = 120
_PATH_CUTS = ("site-packages/", "/lib/python3.", "/work/main/")


class Sampler:
    def __init__(self) -> None:
        self.samples = 0
        self.own: collections.Counter[str] = collections.Counter()
        self.inclusive: collections.Counter[str] = collections.Counter()

    @staticmethod
    def _name(frame: FrameType) -> str:
        path = frame.f_code.co_filename
        for cut in _PATH_CUTS:
            if cut in path:
                path = path.split(cut, 1)[1]
        return f"{path}:{frame.f_code.co_name}"

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if frame is None:
            return
        self.samples += 1
        self.own[self._name(frame)] += 1
        seen: set[str] = set()
        current: FrameType | None = frame
        while current is not None:
            name = self._name(current)
            if name not in seen:
                seen.add(name)
                self.inclusive[name] += 1
            current = current.f_back

    def report(self) -> str:
        total = max(1, self.samples)
        lines = [f"{self.samples} samples, one per {INTERVAL_S * 1000:g} ms of CPU", "", "own:"]
        lines += [f"{n:7d} {100 * n / total:5.1f}%  {k}" for k, n in self.own.most_common(TOP_OWN)]
        lines += ["", "inclusive:"]
        lines += [
            f"{n:7d} {100 * n / total:5.1f}%  {k}"
            for k, n in self.inclusive.most_common(TOP_INCLUSIVE)
        ]
        return "\n".join(lines) + "\n"


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: python -m benchmarks.sampler OUT MODULE [ARGS...]", file=sys.stderr)
        return 2
    out, module = Path(sys.argv[1]), sys.argv[2]
    sampler = Sampler()
    atexit.register(lambda: out.write_text(sampler.report()))
    signal.signal(signal.SIGPROF, sampler.on_signal)
    signal.setitimer(signal.ITIMER_PROF, INTERVAL_S, INTERVAL_S)
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
