"""voiyd's benchmarks: speed and memory of the API and the projection, beside raw NATS baselines.

``python -m benchmarks`` starts its own nats-server and a ``voiyd-server`` process on loopback,
measures, prints a table and (with ``--write``) regenerates the figures in ``BENCHMARKS.md``.
Benchmarks are not tests: nothing here asserts on time, and nothing here lives under ``tests/``.
"""
