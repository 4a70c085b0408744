"""The same job in Quix Streams, as a user of that library writes it: an Application with one
StreamingDataFrame per topic, the events validated with the same pydantic contracts, and Quix's
own PostgreSQLSink (batched per checkpoint, ON CONFLICT DO NOTHING) writing the same tables.
Invalid events are filtered out (counted in the log), not dead-lettered.

Run: python -m streams.devkit.bench.peers.quix   (settings from LEARNSTREAM_*; needs the `bench` extra)
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from quixstreams import Application
from quixstreams.sinks.community.postgresql import PostgreSQLSink

from schemas.decode import decode_message
from streams.config import load_settings
from streams.devkit.synthetic import ID_FIELD

TABLE = {"learning_event": "learning_events", "performance_sample": "system_performance_metrics",
         "engagement_update": "content_performance_metrics"}


def _connection(s):
    """The bench's Kafka principal as Quix's ConnectionConfig (a plain address without one)."""
    from quixstreams.kafka.configuration import ConnectionConfig

    from streams.kafka_auth import kafka_auth

    auth = kafka_auth(s)
    if not auth.sasl and not auth.tls:
        return s.kafka_bootstrap
    extra = {"sasl_mechanism": auth.sasl_mechanism, "sasl_username": auth.username,
             "sasl_password": auth.password} if auth.sasl else {}
    if auth.ssl_cafile:
        extra["ssl_ca_location"] = auth.ssl_cafile
    return ConnectionConfig(bootstrap_servers=s.kafka_bootstrap, security_protocol=auth.security_protocol.lower(),
                            **extra)


class _MigratedSink(PostgreSQLSink):
    """Quix's sink on our migrated tables: its start runs `CREATE SCHEMA IF NOT EXISTS public`,
    which PostgreSQL refuses to a role without CREATE on the database (the worker's role, which the
    bench gives every pipeline) even when the schema exists; the schema is there already."""

    def _create_schema(self) -> None:
        return None


def main() -> None:
    s = load_settings()
    dsn = urlsplit(s.database_url)
    app = Application(
        broker_address=_connection(s),
        consumer_group=s.app_id,
        auto_offset_reset="earliest",
        loglevel="WARNING",
        auto_create_topics=False,
        state_dir=str(s.data_dir / "quix-state"),
    )
    for kind, topic_name in s.source_topics.items():
        if kind not in ID_FIELD:  # the three log topics the bench loads
            continue
        topic = app.topic(topic_name, value_deserializer="bytes", key_deserializer="bytes")
        id_field = ID_FIELD[kind]

        def rows(raw: bytes, kind=kind, id_field=id_field) -> list[dict]:
            out = []
            for event in decode_message(raw, kind).events:
                row = event.model_dump(mode="json", exclude_none=True)
                row["id"] = row.pop(id_field)
                out.append(row)
            return out

        sink = _MigratedSink(
            host=dsn.hostname, port=dsn.port or 5432, dbname=dsn.path.lstrip("/"),
            user=dsn.username, password=dsn.password or "", table_name=TABLE[kind],
            schema_auto_update=False, on_conflict_do_nothing=True, include_metadata=False,
        )
        app.dataframe(topic).apply(rows, expand=True).sink(sink)
    app.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    main()
