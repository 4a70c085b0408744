"""Kafka topic declaration with the admin client (Faust only creates its internal topics)."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from streams.kafka_auth import KafkaAuth, default_auth
from streams.sizing import MessageLimits


class KafkaUnavailable(Exception):
    """Kafka could not be reached or refused a request; the message says where and why."""


async def _admin(bootstrap: str, timeout_s: float, auth: KafkaAuth | None) -> AIOKafkaAdminClient:
    """An admin client for `bootstrap` as `auth` (None: this process's settings' principal)."""
    auth = auth or default_auth()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
                                **auth.client_kwargs())
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
    except (TimeoutError, KafkaError, OSError) as exc:
        await admin.close()
        raise KafkaUnavailable(
            f"cannot reach Kafka at {bootstrap} ({exc.__class__.__name__}: {exc or 'timed out'}); "
            "is it running? (`learnstream services up`, or set LEARNSTREAM_KAFKA_BOOTSTRAP)"
        ) from exc
    return admin


async def default_replication_factor(admin: AIOKafkaAdminClient) -> int:
    """The broker's default.replication.factor (1 when it does not say)."""
    node = str(admin._client.cluster.controller.nodeId) if admin._client.cluster.controller else "1"
    for response in await admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, node, {"default.replication.factor": None})]):
        for error_code, _msg, _rtype, _name, entries in response.resources:
            for entry in entries if not error_code else ():
                if entry[0] == "default.replication.factor" and entry[1]:
                    return int(entry[1])
    return 1


async def ensure_topics(bootstrap: str, names: list[str], partitions: int, timeout_s: float = 15.0,
                        replication_factor: int | None = None, auth: KafkaAuth | None = None) -> list[str]:
    """Create the topics that do not exist yet, with `replication_factor` replicas (None: the
    broker's default.replication.factor); return the names created."""
    admin = await _admin(bootstrap, timeout_s, auth)
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if missing:
            factor = replication_factor or await default_replication_factor(admin)
            try:
                response = await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=factor) for n in missing]
                )
            except TopicAlreadyExistsError:
                response = None  # another worker made it meanwhile
            # the broker answers per topic: a refusal is in the answer, not raised
            refused = [(t[0], for_code(t[1]).__name__, t[2] if len(t) > 2 else "")
                       for t in getattr(response, "topic_errors", ()) if t[1] and for_code(t[1]) is not TopicAlreadyExistsError]
            if refused:
                raise KafkaUnavailable(f"Kafka at {bootstrap} refused to create " + "; ".join(
                    f"{name} ({error}{': ' + text if text else ''})" for name, error, text in refused)
                    + f" with {partitions} partitions and {factor} replicas")
        return missing
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {bootstrap} refused topic creation: {exc}") from exc
    finally:
        await admin.close()


async def delete_topics(bootstrap: str, prefixes: tuple[str, ...], timeout_s: float = 15.0,
                        auth: KafkaAuth | None = None) -> list[str]:
    """Delete every topic whose name starts with one of `prefixes` (e.g. a bench run's own topics
    and its workers' internal ones); return the names deleted."""
    admin = await _admin(bootstrap, timeout_s, auth)
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefixes)]
        if names:
            await admin.delete_topics(names)
        return names
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {bootstrap} refused to delete topics: {exc}") from exc
    finally:
        await admin.close()


async def replication_factor(bootstrap: str, configured: int | None, timeout_s: float = 15.0,
                             auth: KafkaAuth | None = None) -> int:
    """`configured`, or the broker's default.replication.factor."""
    if configured:
        return configured
    admin = await _admin(bootstrap, timeout_s, auth)
    try:
        return await default_replication_factor(admin)
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka at {bootstrap} refused to describe its configs: {exc}") from exc
    finally:
        await admin.close()


async def message_limits(bootstrap: str, names: list[str], max_request_size: int, timeout_s: float = 15.0,
                         auth: KafkaAuth | None = None) -> MessageLimits:
    """The size budgets of the topics the worker produces to: each topic's max.message.bytes, and
    the broker's message.max.bytes for topics made later (Faust's changelogs)."""
    admin = await _admin(bootstrap, timeout_s, auth)
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
