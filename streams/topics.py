"""Kafka topic declaration with the admin client (Faust only creates its internal topics)."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError


class KafkaUnavailable(Exception):
    """Kafka could not be reached or refused a request; the message says where and why."""


async def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout_s: float = 15.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except (KafkaError, OSError, asyncio.TimeoutError) as exc:
        await admin.close()
        raise KafkaUnavailable(
            f"cannot reach Kafka at {bootstrap} ({exc.__class__.__name__}: {exc or 'timed out'}); "
            "is it running? (`learnstream services up`, or set LEARNSTREAM_KAFKA_BOOTSTRAP)"
        ) from exc
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another worker made it meanwhile
        return missing
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {bootstrap} refused topic creation: {exc}") from exc
    finally:
        await admin.close()
