"""NATS credentials and TLS certificates for voiyd: roles, the server config, the CA."""
