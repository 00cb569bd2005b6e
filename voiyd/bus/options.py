"""The NATS connection options every daemon takes, declared once.

``nats_options`` adds ``--nats-url`` (repeatable), ``--creds``, ``--tls-ca``, ``--tls-cert``
and ``--tls-key`` (with their ``VOIYD_NATS_*`` variables) to a click command and hands the
command one ``nats: NatsOptions`` argument instead of five.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import rich_click as click

from voiyd.bus.connect import NatsOptions

T = TypeVar("T")

_OPTIONS = (
    click.option(
        "--nats-url",
        "nats_urls",
        envvar="VOIYD_NATS_URL",
        multiple=True,
        default=["nats://127.0.0.1:4222"],
        show_default=True,
        help="NATS server URL(s).",
    ),
    click.option(
        "--creds",
        type=click.Path(path_type=Path),
        envvar="VOIYD_NATS_CREDS",
        help="NATS credentials file (nkey seed or JWT creds).",
    ),
    click.option(
        "--tls-ca",
        type=click.Path(path_type=Path),
        envvar="VOIYD_NATS_TLS_CA",
        help="CA that signed the NATS server's certificate.",
    ),
    click.option(
        "--tls-cert",
        type=click.Path(path_type=Path),
        envvar="VOIYD_NATS_TLS_CERT",
        help="Client certificate (mutual TLS).",
    ),
    click.option(
        "--tls-key",
        type=click.Path(path_type=Path),
        envvar="VOIYD_NATS_TLS_KEY",
        help="Client key (mutual TLS).",
    ),
)


def nats_options(command: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(command)
    def with_nats(
        *args: Any,
        nats_urls: tuple[str, ...],
        creds: Path | None,
        tls_ca: Path | None,
        tls_cert: Path | None,
        tls_key: Path | None,
        **kwargs: Any,
    ) -> T:
        nats = NatsOptions(
            servers=tuple(nats_urls),
            creds_file=creds,
            tls_ca=tls_ca,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
        return command(*args, nats=nats, **kwargs)

    decorated: Callable[..., T] = with_nats
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated
