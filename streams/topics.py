"""Kafka topic declaration with the admin client (Faust only creates its internal topics)."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from streams.sizing import MessageLimits


class KafkaUnavailable(Exception):
    """Kafka could not be reached or refused a request; the message says where and why."""


async def _admin(bootstrap: str, timeout_s: float) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except (TimeoutError, KafkaError, OSError) as exc:
        await admin.close()
        raise KafkaUnavailable(
            f"cannot reach Kafka at {bootstrap} ({exc.__class__.__name__}: {exc or 'timed out'}); "
            "is it running? (`learnstream services up`, or set LEARNSTREAM_KAFKA_BOOTSTRAP)"
        ) from exc
    return admin


async def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout_s: float = 15.0) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = await _admin(bootstrap, timeout_s)
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


async def message_limits(bootstrap: str, names: list[str], max_request_size: int, timeout_s: float = 15.0) -> MessageLimits:
    """The size budgets of the topics the worker produces to: each topic's max.message.bytes, and
    the broker's message.max.bytes for topics made later (Faust's changelogs)."""
    admin = await _admin(bootstrap, timeout_s)
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, n, {"max.message.bytes": None}) for n in dict.fromkeys(names)]
        # any broker answers for the cluster-wide default; the controller's id is what we know
        node = str(admin._client.cluster.controller.nodeId) if admin._client.cluster.controller else "1"
        resources.append(ConfigResource(ConfigResourceType.BROKER, node, {"message.max.bytes": None}))
        limits = MessageLimits(max_request_size=max_request_size)
        for response in await admin.describe_configs(resources):
            for error_code, _msg, rtype, name, entries in response.resources:
                if error_code:
                    continue
                for entry in entries:
                    if entry[0] == "max.message.bytes" and rtype == ConfigResourceType.TOPIC:
                        limits.topic_max[name] = int(entry[1])
                    elif entry[0] == "message.max.bytes":
                        limits.default_topic_max = int(entry[1])
        return limits
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {bootstrap} refused to describe topic configs: {exc}") from exc
    finally:
        await admin.close()
