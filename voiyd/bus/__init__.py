"""The bus: every NATS subject, stream, codec and request helper voiyd uses, in one package."""
