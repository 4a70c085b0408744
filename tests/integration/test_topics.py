"""The topics the worker creates get the replicas the operator configures, else the broker's
default.replication.factor (issue #23, item 14), on the real (single-broker) Kafka."""

from __future__ import annotations

import pytest

from streams.topics import KafkaUnavailable, ensure_topics, replication_factor

pytestmark = pytest.mark.services


async def test_topics_get_the_configured_replicas_or_the_brokers_default(stack):
    assert await replication_factor(stack.bootstrap, None) == 1  # what the local broker says
    assert await replication_factor(stack.bootstrap, 3) == 3
    name = f"t{stack.tag}.replicas"
    # two replicas asked of a one-broker cluster: refused, said, not silently one
    with pytest.raises(KafkaUnavailable, match="InvalidReplicationFactor"):
        await ensure_topics(stack.bootstrap, [name], 1, replication_factor=2)
    assert await ensure_topics(stack.bootstrap, [name], 1) == [name]
