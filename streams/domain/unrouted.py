"""What routing left out of the domain tables, made visible: counted per type and reason
(`learnstream_unrouted_total`) and announced, one notice per event, on the unrouted topic, so the
producer's team sees it. The events themselves are stored (learning_events) and recorded in
unrouted_events; `learnstream domain reroute` routes them once fixed.

Notices are published after the batch is stored and before its offsets are committed: a crash in
between redelivers the batch, whose rows are duplicates then, so their notices are not sent again
(unrouted_events holds them all; the topic is a feed, the table the record)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import orjson

from db.domain.routing import RouteReport
from schemas.events import UnroutedEvent
from schemas.learning import DATA_CONTRACTS
from streams import metrics
from streams.dead_letters import DeadLetterPublisher, Message
from streams.retry import Retrier

log = logging.getLogger("learnstream.unrouted")

#: distinct unknown event types that get their own metric label; later ones are counted as OTHER
MAX_UNKNOWN_LABELS = 50
OTHER = "(other)"


class UnroutedNotices:
    """Counts a batch's RouteReport and publishes its unrouted events' notices (retrying until the
    broker has them: the batch's offsets wait)."""

    def __init__(self, publish: DeadLetterPublisher | None, retrying: Retrier) -> None:
        self._publish, self._retrying = publish, retrying
        self._unknown_labels: set[str] = set()

    def _label(self, event_type: str) -> str:
        if event_type in DATA_CONTRACTS or event_type in self._unknown_labels:
            return event_type
        if len(self._unknown_labels) < MAX_UNKNOWN_LABELS:
            self._unknown_labels.add(event_type)
            return event_type
        return OTHER

    def count(self, report: RouteReport) -> None:
        for u in report.unrouted:
            metrics.UNROUTED.labels(u.event_type, u.reason).inc()
        for event_type, n in report.unknown.items():
            metrics.UNROUTED.labels(self._label(event_type), "unknown_type").inc(n)

    async def announce(self, report: RouteReport, messages: Sequence[Message], origin_of: dict, at: datetime) -> None:
        """Publish a notice per unrouted event; `origin_of`: (timestamp, workspace_id, event_id) -> index in
        `messages` (an event id may repeat in another workspace: migration 0025)."""
        if not report.unrouted or self._publish is None:
            return
        notices = []
        for u in report.unrouted:
            msg = messages[origin_of[(u.timestamp, u.workspace_id, u.event_id)]]
            notice = UnroutedEvent(
                workspace_id=u.workspace_id, event_id=u.event_id, timestamp=u.timestamp, event_type=u.event_type,
                reason=u.reason, errors=list(u.errors), source_topic=msg.topic, partition=msg.partition,
                offset=msg.offset, detected_at=at,
            )
            notices.append((f"{u.workspace_id}:{u.event_id}".encode(), orjson.dumps(notice.model_dump(mode="json"))))
        publish = self._publish

        async def attempt() -> None:
            futures = [await publish(key, value) for key, value in notices]
            for fut in futures:
                if hasattr(fut, "__await__"):
                    await fut

        await self._retrying(f"publishing {len(notices)} unrouted notices", attempt)
        metrics.UNROUTED_ANNOUNCED.inc(len(notices))
