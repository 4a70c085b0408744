"""Configuration: LEARNSTREAM_* environment variables (and the services env file), via pydantic-settings.

Precedence, highest first: explicit CLI flags (applied by the CLI as overrides), the process
environment, the env file written by `learnstream services up` (`<state_dir>/services.env`),
then the defaults below.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STATE_DIR = Path(".learnstream")


def state_dir() -> Path:
    """Where per-checkout runtime state lives (service data, the services env file)."""
    return Path(os.environ.get("LEARNSTREAM_STATE_DIR", str(DEFAULT_STATE_DIR))).resolve()


def services_env_file() -> Path:
    return state_dir() / "services.env"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEARNSTREAM_", extra="ignore")

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,host:port]"
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = Field(
        "PLAINTEXT", description="how Kafka clients connect: PLAINTEXT (no auth), SASL_PLAINTEXT, SASL_SSL or SSL "
        "(`learnstream services up` sets SASL_PLAINTEXT with the worker principal)"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism (with SASL_PLAINTEXT or SASL_SSL)"
    )
    kafka_sasl_username: str = Field("", description="SASL user name: the Kafka principal User:<name>")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password (never logged)")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle that signs the brokers' certificates (SSL, SASL_SSL)")
    kafka_ssl_certfile: Path | None = Field(None, description="client certificate, for mTLS (SSL)")
    kafka_ssl_keyfile: Path | None = Field(None, description="the client certificate's private key (SSL)")
    kafka_config_file: Path | None = Field(
        None, description="a kcat-style client config file (security.protocol, sasl.mechanisms, sasl.username, "
        "sasl.password, ssl.*.location): when set, it names the principal instead of the KAFKA_SECURITY/SASL/SSL "
        "settings (`learnstream services up` writes one per principal: LEARNSTREAM_KCAT_<PRINCIPAL>_CONFIG)"
    )
    database_url: str = Field(
        "postgresql://learnstream_worker@127.0.0.1:5432/learnstream",
        description="PostgreSQL DSN of the workers' login (a member of learnstream_service that owns nothing; "
        "`learnstream services up` writes it with a generated password)",
    )
    admin_database_url: str | None = Field(
        None,
        description="PostgreSQL DSN of the schema owner (learnstream_owner): `learnstream migrate` and the operators' "
        "commands that need ownership use it, never a worker; unset: database_url",
    )

    app_id: str = Field(
        "learnstream", description="Faust app id = Faust's Kafka consumer group (window-input, alert commands); the "
        "ingest consumer's group is <app id>-ingest, alert delivery's <app id>-delivery"
    )
    learning_topic: str = Field("learning-events", description="learning events from the AI components")
    performance_topic: str = Field("performance-samples", description="performance samples (system metrics)")
    engagement_topic: str = Field("engagement-updates", description="engagement updates: posts' cumulative counters")
    content_topic: str = Field("content-items", description="post metadata scraped per platform")
    accounts_topic: str = Field("account-snapshots", description="accounts' state over time: own and competitors'")
    dlq_topic: str = Field("learnstream.dlq", description="dead letters: bad input, with the reason and stage")
    unrouted_topic: str = Field(
        "learnstream.unrouted", description="learning events stored but not routed into the domain tables, "
        "with the reason (their producer's team reads it; `learnstream domain unrouted` lists them)"
    )
    alert_notifications_topic: str = Field(
        "alert-notifications", description="alert notifications (one per state change), as the alert engine sends them"
    )
    alert_commands_topic: str = Field(
        "alert-commands", description="ack, mute and unmute commands for the alert engine (`learnstream alerts`)"
    )
    window_input_topic: str = Field(
        "", description="internal: stored events keyed by workspace, for the window stage [default: <app id>.window-input: "
        "each app id has its own, so a worker under a new app id never replays another app's history]"
    )
    rollups_topic: str = Field("learnstream.rollups", description="closed windows, for downstream consumers")
    late_events_topic: str = Field("learnstream.late-events", description="events later than the grace period")
    topic_partitions: int = Field(8, ge=1, description="partitions for topics the worker creates")
    topic_replication_factor: int | None = Field(
        None, ge=1, le=32, description="replicas of the topics the worker creates and of Faust's changelog "
        "[default: the broker's default.replication.factor]"
    )

    batch_max_events: int = Field(5000, ge=1, description="flush a batch at this many messages")
    batch_max_bytes: int = Field(
        4 * 1024 * 1024, ge=1, description="flush a batch at this many bytes of message values (bounds a batch of "
        "event arrays)"
    )
    batch_within_s: float = Field(
        0.1, gt=0, description="flush a batch this many seconds after its first message (under a backlog batches "
        "fill by count or bytes first; this bounds the latency of a paced stream)"
    )
    stream_buffer_maxsize: int = Field(32768, ge=1, description="Faust per-partition buffer (window-input, commands)")
    ingest_partition_fetch_bytes: int = Field(
        4 * 1024 * 1024, ge=1_048_576, description="most bytes the ingest consumer fetches per partition per request"
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        "asyncio", description="the worker's event loop (asyncio: the standard library's; uvloop: libuv's, measured "
        "+5% on 1,000-event arrays and -13% on single-event messages here, see docs/bench.md)"
    )
    gc_threshold: int = Field(
        50_000, ge=0, description="allocations between young-generation garbage collections (0: Python's default, "
        "700); objects alive at start are frozen out of collection. A large value keeps the collector from "
        "walking every live row and pane several times per batch"
    )
    rebalance_drain_s: float = Field(
        20.0, gt=0, description="how long batches in flight may take to be stored and committed when partitions "
        "are revoked (the rest is cancelled and redelivered to the next owner)"
    )

    max_inflight_batches: int = Field(
        2, ge=1, description="batches per topic being written while the next is decoded"
    )
    db_pool_size: int = Field(6, ge=1, description="connections of the worker's writer pool, shared by all topics")
    direct_copy: bool = Field(
        True, description="COPY straight into the tables, falling back to staged + ON CONFLICT on a stored row "
        "(under row-level security, migration 0013: into the batch's partition, which has none)"
    )
    workspace_registration: Literal["auto", "registered"] = Field(
        "auto", description="events for a workspace not in the workspaces table: auto = register it on first "
        "sight; registered = dead-letter them (reason unknown_workspace)",
    )
    db_retry_initial_s: float = Field(
        0.2, gt=0, description="PostgreSQL unreachable: backoff after the first failed attempt (doubling, full jitter)"
    )
    db_retry_max_s: float = Field(5.0, gt=0, description="PostgreSQL unreachable: backoff cap between attempts")

    windows_enabled: bool = Field(True, description="run the window stage and the alert engine")
    window_tumbling_s: float = Field(60.0, gt=0, description="tumbling window size")
    window_hopping_s: float = Field(300.0, gt=0, description="hopping window size")
    window_hop_step_s: float = Field(60.0, gt=0, description="hopping window step")
    window_grace_s: float = Field(10.0, ge=0, description="how late (event time) an event may still land in its window")
    window_idle_s: float = Field(
        5.0, gt=0, description="a partition quiet this long closes its windows on wall-clock time"
    )
    window_close_interval_s: float = Field(0.25, gt=0, description="how often due windows are looked for")
    window_input_stall_s: float = Field(
        10.0, gt=0, description="the window stage idle this long while a window-input partition has messages "
        "beyond the last it received: that partition is sought back to them (messages Faust fetched around a "
        "recovery and never delivered)",
    )
    window_flush_interval_s: float = Field(
        0.5, gt=0, description="how often changed window state goes to the changelog (and its messages are acked)"
    )
    alert_tick_s: float = Field(1.0, gt=0, description="how often repeats, NoData and mute expiry are checked")

    alert_delivery_enabled: bool = Field(
        True, description="deliver alert notifications to the channels their rules name (alertmanager, webhook), "
        "from the worker's own consumer of the notifications topic (group <app id>-delivery)",
    )
    alert_undelivered_topic: str = Field(
        "learnstream.alerts.undelivered", description="notifications a channel could not take, with the reason",
    )
    delivery_retry_for_s: float = Field(
        3600.0, gt=0, description="a channel that fails (5xx, 429, timeouts, connection errors) is retried this long "
        "per notification, then the notification is dead-lettered (reason retries_exhausted)",
    )
    delivery_retry_initial_s: float = Field(1.0, gt=0, description="delivery backoff after the first failed attempt")
    delivery_retry_max_s: float = Field(60.0, gt=0, description="delivery backoff cap (doubling, full jitter)")
    delivery_max_pending: int = Field(
        10_000, ge=1, description="notifications consumed and not yet handled (delivered, dead-lettered or written "
        "to a channel's backlog); the delivery consumer pauses above it",
    )
    delivery_max_pending_per_channel: int = Field(
        1_000, ge=1, description="notifications a channel holds in memory on their way to it; the ones sent to it "
        "beyond that wait in its backlog in PostgreSQL (alert_delivery_backlog), so a channel that is down or slow "
        "delays only itself",
    )
    delivery_lane_idle_s: float = Field(
        300.0, gt=0, description="a channel's delivery lane (its task, queue and bookkeeping) is released once it has "
        "had nothing pending, in flight, in its backlog or open for Alertmanager this long; the channel's next "
        "notification starts it again",
    )
    delivery_config_refresh_s: float = Field(
        5.0, gt=0, description="how often the delivery rereads the channels and the rules' channel names",
    )
    alertmanager_url: str | None = Field(
        None, description="an Alertmanager every workspace can name as channel `alertmanager` without adding it "
        "(a workspace's own channel of that name wins), e.g. http://alertmanager:9093",
    )
    outbound_allow: str = Field(
        "", description="addresses and hosts alert deliveries may reach although they are not public (loopback, "
        "link-local, private, CGNAT, ...: refused otherwise, when a channel is added and on every connection), "
        "comma-separated: a network or address (10.0.0.0/8, 127.0.0.1: any port), an address and port "
        "(127.0.0.1:9093, [::1]:9093), a host name as written in channel URLs, with or without a port "
        "(alertmanager:9093). LEARNSTREAM_ALERTMANAGER_URL is trusted as configured and needs no entry",
    )
    alertmanager_resend_s: float = Field(
        60.0, gt=0, description="the alerts still open are re-posted to their Alertmanager this often, with endsAt "
        "4 times this ahead (Prometheus' convention: an alert nobody re-posts expires there)",
    )
    alert_generator_url: str = Field(
        "learnstream://alerts/rules/{rule_id}", description="an Alertmanager alert's generatorURL; {rule_id}, "
        "{workspace_id} and {fingerprint} are filled in (point it at your dashboard)",
    )

    timestamp_earliest: AwareDatetime = Field(
        datetime(2000, 1, 1, tzinfo=UTC),
        description="events timed before this are dead-lettered (timestamp_out_of_range)",
    )
    timestamp_max_future_s: float = Field(
        300.0, ge=0, description="events timed more than this past the worker's clock are dead-lettered "
        "(clock skew allowed); watermarks never pass the clock by more either",
    )
    producer_max_request_size: int = Field(
        1_000_000, ge=262_656, description="largest request the producer sends; produced messages are split to fit "
        "it and each topic's max.message.bytes",
    )
    alert_max_age_s: float = Field(
        3600.0, ge=0, description="windows that ended longer ago than this (history, a backfill) are not "
        "evaluated by alert rules",
    )
    alert_instance_expiry_s: float = Field(
        3600.0, gt=0, description="an alert instance (rule x series) whose series had no window for this long (or "
        "3 of the rule's windows, if longer) after the rule's nodata_after is dropped, resolved first if its "
        "alert is open: the engine holds the series seen lately, not every series ever seen",
    )
    recompute_interval_s: float = Field(
        1.0, gt=0, description="how often closed windows that received late events are recomputed from the stored rows",
    )
    recompute_max_hours: int = Field(
        24, ge=1, description="hours of one kind and workspace recomputed per round (bounds one round's transaction)",
    )
    shutdown_timeout_s: float = Field(
        10.0, gt=0, description="SIGTERM: in-flight work gets this long, then the worker exits (the rest is redelivered)",
    )

    domain_routing: bool = Field(
        True, description="route learning events into their domain tables (predictions, patterns, models, ...) "
        "in the transaction that stores them; off: learning_events only",
    )
    domain_resume_interval_s: float = Field(
        5.0, gt=0, description="how often parked events (waiting for a referent) are tried again",
    )
    domain_park_max_age_s: float = Field(
        86_400.0, gt=0, description="a parked event whose referent has not come after this long is dead-lettered "
        "(reason unresolved_reference)",
    )

    jobs_enabled: bool = Field(True, description="run the scheduled jobs (streams/jobs/), one worker at a time each")
    jobs_check_interval_s: float = Field(30.0, gt=0, description="how often the worker looks for due jobs")
    industry_benchmarks: bool = Field(
        False, description="the benchmarks job's industry_average, the one figure computed across workspaces: "
        "each workspace gets an average over the other workspaces' shared competitors (docs/jobs-and-reports.md "
        "#benchmarks); off: NULL. Meaningful only with LEARNSTREAM_WORKSPACE_REGISTRATION=registered, or where all workspaces "
        "belong to one party: with auto, one producer can mint the workspaces it needs to isolate another's figures"
    )
    reports_dir: Path = Field(
        default_factory=lambda: state_dir() / "reports",
        description="where reports are written: <dir>/<workspace>/<report>/<report>-<time>.<format> "
                    "[default <state dir>/reports]",
    )

    partition_check_interval_s: float = Field(
        3600.0, gt=0, description="how often the worker makes partitions ahead of time"
    )

    maintenance_lock_timeout_ms: int = Field(
        100, ge=1, le=60_000, description="retention: lock_timeout of each DETACH PARTITION attempt (and each batch); "
        "bounds how long ingest can queue behind it",
    )
    maintenance_lock_retries: int = Field(
        10, ge=1, description="retention: attempts per partition detach (or batch) before it is skipped until the next run",
    )
    maintenance_retry_initial_s: float = Field(
        0.1, gt=0, description="retention: backoff after the first failed lock attempt (doubling, full jitter)",
    )
    maintenance_retry_max_s: float = Field(2.0, gt=0, description="retention: backoff cap between lock attempts")
    maintenance_analyze_min_rows: int = Field(
        10_000, ge=1, description="retention: ANALYZE a table after at least this many of its rows were moved or deleted",
    )

    metrics_host: str = Field("127.0.0.1", description="/metrics listen address")
    metrics_port: int = Field(9464, ge=0, le=65535, description="/metrics, /healthz and /readyz port (0 = disabled)")
    ready_max_lag: int = Field(
        100_000, ge=0, description="/readyz fails while the ingest consumer's total lag (messages) is above this",
    )
    health_timeout_s: float = Field(
        5.0, gt=0, description="/healthz fails if the event loop does not answer within this; /readyz if SELECT 1 "
        "does not",
    )

    data_dir: Path = Field(Path(".learnstream/faust"), description="Faust's local data dir")
    log_level: str = Field("info", description="log level of the worker (debug, info, warning, error)")

    @field_validator("outbound_allow")
    @classmethod
    def _outbound_allow_parses(cls, v: str) -> str:
        from streams.outbound import OutboundPolicy

        OutboundPolicy(v)  # a ValueError names the entry it cannot read
        return v

    @model_validator(mode="after")
    def _own_window_input(self) -> Settings:
        # internal topics belong to their app: the window stage's input is named after the app id
        if not self.window_input_topic:
            self.window_input_topic = f"{self.app_id}.window-input"
        return self

    @property
    def source_topics(self) -> dict[str, str]:
        """kind -> topic name for the ingest topics."""
        return {
            "learning_event": self.learning_topic,
            "performance_sample": self.performance_topic,
            "engagement_update": self.engagement_topic,
            "content_item": self.content_topic,
            "account_snapshot": self.accounts_topic,
        }


def admin_dsn(settings: Settings) -> str:
    """The DSN for migrations and operators' commands: admin_database_url, else database_url."""
    return settings.admin_database_url or settings.database_url


def load_settings(**overrides) -> Settings:
    """Settings from the environment plus the services env file, with non-None overrides on top."""
    env_file = services_env_file()
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if env_file.exists():
        return Settings(_env_file=str(env_file), **kwargs)  # type: ignore[call-arg]
    return Settings(**kwargs)
