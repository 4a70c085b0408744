"""What a team writes on day one: a Faust agent per topic that validates each event with the
pydantic model and INSERTs it on its own (ON CONFLICT DO NOTHING), one round trip per event.

Run: python -m streams.devkit.bench.peers.naive_faust   (settings from LEARNSTREAM_*)
"""

from __future__ import annotations

import asyncpg
import faust
import orjson
from pydantic import ValidationError

from db.pool import connect
from db.tables import TABLES
from schemas.events import CONTRACTS
from streams.app import broker_urls
from streams.config import load_settings
from streams.kafka_auth import kafka_auth

settings = load_settings()
app = faust.App(
    f"{settings.app_id}",
    broker=broker_urls(settings.kafka_bootstrap),
    broker_credentials=kafka_auth(settings).faust_credentials(),
    value_serializer="raw",
    store="memory://",
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    datadir=str(settings.data_dir),
)


def _make_agent(kind: str, topic_name: str) -> None:
    model, spec = CONTRACTS[kind], TABLES[kind]
    placeholders = ", ".join(f"${i}" for i in range(1, len(spec.columns) + 1))
    sql = f"INSERT INTO {spec.name} ({spec.quoted_columns()}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"

    async def agent(stream):
        conn: asyncpg.Connection = await connect(settings.database_url)
        async for value in stream:
            try:
                obj = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            for item in obj if isinstance(obj, list) else [obj]:
                try:
                    event = model.model_validate(item)
                except ValidationError:
                    continue
                await conn.execute(sql, *spec.row(event))

    agent.__name__ = agent.__qualname__ = f"naive_{kind}"
    app.agent(app.topic(topic_name, value_type=bytes), name=f"naive-{kind}")(agent)


for _kind, _topic in settings.source_topics.items():
    if _kind in TABLES:  # the three log topics the bench loads
        _make_agent(_kind, _topic)

if __name__ == "__main__":
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app.main()
