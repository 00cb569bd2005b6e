"""voiyd-scheduler: follows the event log, keeps its own view, places pending tasks on nodes."""
