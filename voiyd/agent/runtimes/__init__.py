"""Runtimes behind one protocol: Docker (aiodocker), plain processes (exec), and a fake."""
