"""The rebalance listener of the worker's own aiokafka consumers (the ingest consumer, the alert
delivery): it hands each revocation and assignment, as a set of partitions, to its owner's coroutines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiokafka import ConsumerRebalanceListener, TopicPartition

#: a coroutine function called with the partitions revoked or assigned
PartitionsHook = Callable[[set[TopicPartition]], Awaitable[None]]


class RebalanceHooks(ConsumerRebalanceListener):
    """Forwards aiokafka's rebalance callbacks to `on_revoked` and `on_assigned` (aiokafka awaits
    them: the rebalance goes on once they return)."""

    def __init__(self, on_revoked: PartitionsHook, on_assigned: PartitionsHook) -> None:
        self._on_revoked, self._on_assigned = on_revoked, on_assigned

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._on_assigned(set(assigned))
