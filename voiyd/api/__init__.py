"""CORE: resource specs, requests, replies and views shared by the CLI and the server.

Pure: no I/O, no clock, no environment. Every model validates what it accepts and names the
field of each problem, so that the edge can reject bad input before anything is appended.
"""
