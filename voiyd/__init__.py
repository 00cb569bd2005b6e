"""voiyd: a lightweight, event-driven orchestrator for container workloads over NATS."""

__version__ = "0.1.0"
