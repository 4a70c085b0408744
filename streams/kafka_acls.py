"""Who may do what on Kafka: the principals of a learnstream deployment and their ACLs, derived
from the Settings' topic names and app id (docs/operations.md, "Kafka principals and ACLs").

- ``producer``: WRITE (and DESCRIBE) the five ingest topics, nothing else: it cannot read the DLQ,
  write alert notifications or alert commands, or join any group.
- ``worker``: reads the ingest topics and alert commands (and may create them); everything on its
  output topics (DLQ, unrouted, window input, rollups, late events, notifications, undelivered);
  everything on topics, groups and transactional ids that START WITH ``<app id>-`` (Faust's
  changelogs and internal topics, its groups ``<app id>-ingest``, ``<app id>-delivery``) and on the
  group named exactly ``<app id>`` (Faust's);
  DESCRIBE_CONFIGS on the cluster (the replication factor and size budgets it reads at start).
- ``alerts``: an alert consumer: READ the notifications topic, with groups starting ``<app id>-alerts``.
- the admin/operator principal is a super user (broker setting ``super.users``): no ACLs needed.

A broker with ``allow.everyone.if.no.acl.found=false`` refuses anything not listed here.
:func:`apply_acls` creates the bindings with the admin client (CreateAcls is idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest, CreateAclsRequest_v1, DeleteAclsRequest, DeleteAclsRequest_v1

from streams.config import Settings
from streams.kafka_auth import KafkaAuth

# Kafka's enum codes (org.apache.kafka.common.resource / acl)
TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID = 2, 3, 4, 5
LITERAL, PREFIXED = 3, 4
ALL, READ, WRITE, CREATE, DESCRIBE, DESCRIBE_CONFIGS = 2, 3, 4, 5, 8, 10
ALLOW = 3
_OPERATIONS = {ALL: "ALL", READ: "READ", WRITE: "WRITE", CREATE: "CREATE", DESCRIBE: "DESCRIBE",
               DESCRIBE_CONFIGS: "DESCRIBE_CONFIGS"}
_RESOURCES = {TOPIC: "topic", GROUP: "group", CLUSTER: "cluster", TRANSACTIONAL_ID: "transactional id"}

PRODUCER, WORKER, ALERTS = "producer", "worker", "alerts"


@dataclass(frozen=True)
class Acl:
    principal: str  # the SASL user name (principal User:<name>)
    resource_type: int
    name: str
    pattern: int
    operation: int

    def __str__(self) -> str:
        prefix = "names starting " if self.pattern == PREFIXED else ""
        return f"User:{self.principal} {_OPERATIONS[self.operation]} on {_RESOURCES[self.resource_type]} {prefix}{self.name}"


def _topics(principal: str, names, ops, pattern: int = LITERAL) -> list[Acl]:
    return [Acl(principal, TOPIC, n, pattern, op) for n in dict.fromkeys(names) for op in ops]


def acl_plan(settings: Settings, principals: dict[str, str] | None = None) -> list[Acl]:
    """The ACL bindings of the producer, worker and alerts principals for these settings' names.
    `principals` maps the roles to SASL user names (default: the role names)."""
    who = {PRODUCER: PRODUCER, WORKER: WORKER, ALERTS: ALERTS, **(principals or {})}
    ingest = list(settings.source_topics.values())
    outputs = [settings.dlq_topic, settings.unrouted_topic, settings.window_input_topic, settings.rollups_topic,
               settings.late_events_topic, settings.alert_notifications_topic, settings.alert_undelivered_topic]
    app = settings.app_id
    worker = who[WORKER]
    return [
        *_topics(who[PRODUCER], ingest, (WRITE, DESCRIBE)),
        *_topics(worker, [*ingest, settings.alert_commands_topic], (READ, DESCRIBE, CREATE, DESCRIBE_CONFIGS)),
        *_topics(worker, outputs, (ALL,)),
        # Faust names everything of an app `<app id>-…` (changelogs, the assignor's topic, agents'
        # channels, transactional ids `<app id>-<group>-<partition>`) and its group is the bare app id.
        # The prefix ends with the separator: app id `learnstream` must not match `learnstream-staging.*`
        # nor app id `a` the topic `alert-commands`.
        *_topics(worker, [f"{app}-"], (ALL,), PREFIXED),
        Acl(worker, GROUP, app, LITERAL, ALL),
        Acl(worker, GROUP, f"{app}-", PREFIXED, ALL),
        Acl(worker, TRANSACTIONAL_ID, f"{app}-", PREFIXED, ALL),
        Acl(worker, CLUSTER, "kafka-cluster", LITERAL, DESCRIBE_CONFIGS),
        *_topics(who[ALERTS], [settings.alert_notifications_topic], (READ, DESCRIBE)),
        Acl(who[ALERTS], GROUP, f"{app}-alerts", PREFIXED, READ),
    ]


class _CreateAcls(CreateAclsRequest):
    """CreateAcls v1 carrying many bindings in one request (aiokafka's builds one)."""

    def __init__(self, acls: list[Acl]) -> None:
        super().__init__(0, "", 0, "", "*", 0, ALLOW)
        self._acls = acls

    def build(self, request_struct_class):
        if request_struct_class.API_VERSION < 1:
            request_struct_class = CreateAclsRequest_v1
        return request_struct_class([
            (a.resource_type, a.name, a.pattern, f"User:{a.principal}", "*", a.operation, ALLOW) for a in self._acls])


class _DeleteAcls(DeleteAclsRequest):
    """DeleteAcls v1 with one exact filter per binding."""

    def __init__(self, acls: list[Acl]) -> None:
        super().__init__(0, "", 0, "", "*", 0, ALLOW)
        self._acls = acls

    def build(self, request_struct_class):
        if request_struct_class.API_VERSION < 1:
            request_struct_class = DeleteAclsRequest_v1
        return request_struct_class([
            (a.resource_type, a.name, a.pattern, f"User:{a.principal}", "*", a.operation, ALLOW) for a in self._acls])


async def revoke_acls(bootstrap: str, auth: KafkaAuth, acls: list[Acl], timeout_s: float = 15.0) -> None:
    """Delete exactly these bindings (those that exist)."""
    if not acls:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
                                **auth.client_kwargs())
    try:
        await admin.start()
        await admin._send_request(_DeleteAcls(acls))
    finally:
        await admin.close()


async def apply_acls(bootstrap: str, auth: KafkaAuth, acls: list[Acl], timeout_s: float = 15.0) -> None:
    """Create the bindings (as a principal allowed to: the admin); raise on the first refusal."""
    if not acls:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000),
                                **auth.client_kwargs())
    try:
        await admin.start()
        response = await admin._send_request(_CreateAcls(acls))
        errors = [(acl, code, text) for acl, (code, text) in zip(acls, response.creation_responses, strict=False) if code]
        if errors:
            acl, code, text = errors[0]
            raise PermissionError(f"Kafka refused the ACL {acl}: {for_code(code).__name__} {text or ''}".rstrip())
    finally:
        await admin.close()
