"""Request/reply over NATS: a ``nats.micro`` service on the serving side, ``call`` on the other.

Replies are msgpack maps. An error reply carries the micro headers ``Nats-Service-Error`` and
``Nats-Service-Error-Code`` (an HTTP-like number) and the body ``{"error": {code, message,
fields}}``; ``call`` turns it back into the matching ``VoiydError``. nats.micro runs one
endpoint's handler at a time, so the service hands each request to its own task (bounded by a
semaphore) to serve many in flight.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import nats.errors
from nats import micro
from nats.aio.client import Client
from nats.micro.request import Request
from nats.micro.service import Service, ServiceConfig
from pydantic import BaseModel

from voiyd.bus import codec
from voiyd.bus.connect import refusals
from voiyd.errors import (
    InternalError,
    InvalidRequestError,
    UnavailableError,
    VoiydError,
    error_from_wire,
)

log = logging.getLogger(__name__)

ERROR_HEADER = "Nats-Service-Error"
ERROR_CODE_HEADER = "Nats-Service-Error-Code"
MAX_REQUEST_BYTES = 256 * 1024
DEFAULT_TIMEOUT_S = 5.0

Handler = Callable[[dict[str, Any]], Awaitable[BaseModel | dict[str, Any]]]
"""Answers one request: a model (dumped as JSON-mode plain types) or a plain map sent as is
(so that bytes stay msgpack binary, as log lines need)."""
current_subject: contextvars.ContextVar[str] = contextvars.ContextVar("current_subject")
"""The subject of the request being served (for endpoints with a wildcard subject)."""
Observer = Callable[[str, float, str], None]
"""Called after each request with (subject, seconds, outcome code or "ok")."""


MAX_ERROR_FIELDS = 100
MAX_ERROR_TEXT = 512
"""An error reply names at most this many fields, each text clipped to this many characters,
so that it always fits in a NATS message however many problems a request had (a request of
20,000 mistyped labels would otherwise get a reply larger than the server's max_payload)."""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_ERROR_TEXT else f"{text[: MAX_ERROR_TEXT - 3]}..."


def error_reply(err: VoiydError) -> tuple[bytes, dict[str, str]]:
    headers = {ERROR_HEADER: _clip(err.message), ERROR_CODE_HEADER: str(err.status)}
    wire = err.to_wire()
    wire["message"] = _clip(err.message)
    wire["fields"] = [
        {"loc": _clip(f.loc), "message": _clip(f.message)} for f in err.fields[:MAX_ERROR_FIELDS]
    ]
    return codec.encode({"error": wire}), headers


class ApiService:
    """Serves ``{subject: handler}`` as endpoints of one micro service (any replica answers)."""

    def __init__(
        self,
        nc: Client,
        *,
        name: str,
        version: str,
        description: str,
        handlers: Mapping[str, Handler],
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        max_inflight: int = 256,
        observe: Observer | None = None,
    ) -> None:
        self._nc = nc
        self._config = ServiceConfig(name=name, version=version, description=description)
        self._handlers = dict(handlers)
        self._spawn = spawn
        self._slots = asyncio.Semaphore(max_inflight)
        self._observe = observe
        self._service: Service | None = None

    async def start(self) -> None:
        self._service = await micro.add_service(self._nc, self._config)
        for subject, handler in self._handlers.items():
            await self._service.add_endpoint(
                name=subject.replace(".", "-").replace("*", "any").replace(">", "all"),
                subject=subject,
                handler=self._make_endpoint(subject, handler),
            )

    async def stop(self) -> None:
        if self._service is not None:
            await self._service.stop()
            self._service = None

    def _make_endpoint(
        self, subject: str, handler: Handler
    ) -> Callable[[Request], Awaitable[None]]:
        async def endpoint(request: Request) -> None:
            await self._slots.acquire()
            self._spawn(self._serve(subject, handler, request))

        return endpoint

    async def _serve(self, subject: str, handler: Handler, request: Request) -> None:
        started = time.perf_counter()
        outcome = "ok"
        try:
            if len(request.data) > MAX_REQUEST_BYTES:
                raise InvalidRequestError(
                    f"request is {len(request.data)} bytes; the limit is {MAX_REQUEST_BYTES}"
                )
            current_subject.set(request.subject)
            reply = await handler(codec.decode_map(request.data))
            body, headers = codec.encode(reply), None
        except VoiydError as err:
            outcome = err.code
            body, headers = error_reply(err)
        except Exception as exc:
            log.exception("request on %s failed", subject)
            outcome = "internal"
            body, headers = error_reply(InternalError(f"internal error: {type(exc).__name__}"))
        finally:
            self._slots.release()
        try:
            await request.respond(body, headers=headers)
        except Exception as exc:  # the requester may be gone; nothing else to do
            log.debug("reply on %s not sent: %s", subject, exc)
        if self._observe is not None:
            self._observe(subject, time.perf_counter() - started, outcome)


async def call(
    nc: Client,
    subject: str,
    body: BaseModel | Mapping[str, Any],
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    trusted: bool = False,
) -> dict[str, Any]:
    """Send one request and return the reply map, or raise the ``VoiydError`` it carried.

    ``trusted`` skips the nesting check of a successful reply (``codec.decode``): for large
    replies of a fixed shape, such as log pages, where walking every value would cost more
    than the rest of the call.
    """
    payload = codec.encode(body if isinstance(body, BaseModel) else dict(body))
    try:
        request = nc.request(subject, payload, timeout=timeout)
        refused = refusals(nc)  # a refused publish fails at once (ForbiddenError), not by timeout
        msg = await (refused.guard(subject, request) if refused is not None else request)
    except nats.errors.NoRespondersError:
        raise UnavailableError(f"nothing is serving {subject}: is voiyd-server running?") from None
    except nats.errors.TimeoutError:
        raise UnavailableError(f"no reply on {subject} within {timeout:g}s") from None
    except nats.errors.MaxPayloadError as exc:
        raise InvalidRequestError(f"request too large for NATS: {exc}") from None
    headers = msg.headers or {}
    if ERROR_CODE_HEADER in headers:
        try:
            data = codec.decode_map(msg.data)
        except InvalidRequestError:
            data = {}
        err = data.get("error")
        if isinstance(err, Mapping):
            raise error_from_wire(err)
        raise InternalError(headers.get(ERROR_HEADER, "error reply without a body"))
    return codec.decode_map(msg.data, trusted=trusted)
