"""Publishing to Kafka: raw (key, value) messages, and JSONL files packed into arrays (`learnstream publish`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas.decode import decode_message
from schemas.events import MAX_EVENTS_PER_MESSAGE
from streams.kafka_auth import KafkaAuth, default_auth
from streams.topics import KafkaUnavailable

_FLUSH_EVERY = 5000


class Publisher:
    """An idempotent producer (acks=all) for sending many batches: `async with Publisher(b) as p`."""

    def __init__(self, bootstrap: str, *, linger_ms: int = 5, auth: KafkaAuth | None = None) -> None:
        self.bootstrap = bootstrap
        self.auth = auth or default_auth()
        self._producer = AIOKafkaProducer(
            **self.auth.client_kwargs(),
            bootstrap_servers=bootstrap,
            acks="all",
            linger_ms=linger_ms,
            max_request_size=4 * 1024 * 1024,
            max_batch_size=1024 * 1024,
            enable_idempotence=True,
        )

    async def __aenter__(self) -> Publisher:
        try:
            await self._producer.start()
        except (KafkaError, OSError) as exc:
            await self._producer.stop()
            raise KafkaUnavailable(f"cannot reach Kafka at {self.bootstrap}: {exc}") from exc
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._producer.stop()

    async def send_all(self, topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
        """Send every (key, value); return when the broker acknowledged all of them."""
        sent = 0
        pending: list[asyncio.Future] = []
        try:
            for key, value in messages:
                pending.append(await self._producer.send(topic, value=value, key=key))
                sent += 1
                if len(pending) >= _FLUSH_EVERY:
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        except KafkaError as exc:  # e.g. TopicAuthorizationFailedError: this principal may not write here
            if exc.__class__.__name__.endswith("AuthorizationFailedError"):
                raise KafkaUnavailable(
                    f"Kafka at {self.bootstrap} refused the messages for {topic}: the principal "
                    f"{self.auth.username or 'ANONYMOUS'!r} may not write it ({exc.__class__.__name__}); run as "
                    "another principal with --kafka-config FILE or LEARNSTREAM_KAFKA_CONFIG_FILE=FILE "
                    "(locally: $LEARNSTREAM_KCAT_ADMIN_CONFIG)") from exc
            raise KafkaUnavailable(f"Kafka at {self.bootstrap} refused the messages for {topic}: "
                                   f"{exc.__class__.__name__}: {exc}") from exc
        return sent


async def publish_messages(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]], *, linger_ms: int = 5,
    auth: KafkaAuth | None = None,
) -> int:
    """Send every (key, value) with a producer of its own (as `auth`, None: this process's
    settings' principal); wait until all are acknowledged."""
    async with Publisher(bootstrap, linger_ms=linger_ms, auth=auth) as publisher:
        return await publisher.send_all(topic, messages)


@dataclass
class JsonlPlan:
    messages: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    events: int = 0
    #: (line number, problem) for lines that --validate refused
    refused: list[tuple[int, str]] = field(default_factory=list)


def _lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    for n, line in enumerate(stream, 1):
        line = line.strip()
        if line:
            yield n, line


def plan_jsonl(
    lines: Iterable[bytes], kind: str | None, *, array_size: int = 1, validate: bool = False, key_field: str = "workspace_id"
) -> JsonlPlan:
    """One event per line -> messages of up to `array_size` events, keyed by workspace_id.

    Arrays group lines of the same key, so a message's key is the workspace of all its events.
    Without --validate, lines are sent as they are (bad input included: the worker dead-letters it).
    """
    if not 1 <= array_size <= MAX_EVENTS_PER_MESSAGE:
        raise ValueError(f"--array-size must be 1..{MAX_EVENTS_PER_MESSAGE}")
    plan = JsonlPlan()
    groups: dict[bytes | None, list[bytes]] = {}

    def flush(key: bytes | None) -> None:
        members = groups.pop(key)
        value = members[0] if array_size == 1 else b"[" + b",".join(members) + b"]"
        plan.messages.append((key, value))

    for n, line in _lines(lines):
        if validate:
            if kind is None:
                raise ValueError("--validate needs a topic whose contract is known (or --kind)")
            decoded = decode_message(line, kind)
            if decoded.rejected:
                e = decoded.rejected.errors[0]
                plan.refused.append((n, f"{e.reason}: {e.path + ': ' if e.path else ''}{e.message}"))
                continue
        try:
            obj = orjson.loads(line)
            key = str(obj[key_field]).encode() if isinstance(obj, dict) and key_field in obj else None
        except orjson.JSONDecodeError:
            key = None
        plan.events += 1
        groups.setdefault(key, []).append(line)
        if len(groups[key]) >= array_size:
            flush(key)
    for key in list(groups):
        flush(key)
    return plan
