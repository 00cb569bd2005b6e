"""voiyd-node: the agent on each host. Dials out to NATS, runs its assigned tasks, reports."""
