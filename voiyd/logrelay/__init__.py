"""voiyd-logrelay: serves task logs (history, tail, follow) from ``VOIYD_LOGS``."""
