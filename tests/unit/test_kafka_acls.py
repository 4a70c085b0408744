"""The ACL plan's prefixes end with the separator Faust uses (`<app id>-`): a short app id gets
nothing on other topics, groups or transactional ids that merely start with the same letters."""

from __future__ import annotations

from streams.config import Settings
from streams.kafka_acls import ALL, GROUP, LITERAL, PREFIXED, TOPIC, TRANSACTIONAL_ID, WORKER, Acl, acl_plan


def _matches(acl: Acl, resource_type: int, name: str) -> bool:
    if acl.resource_type != resource_type:
        return False
    return name == acl.name if acl.pattern == LITERAL else name.startswith(acl.name)


def _granted(acls: list[Acl], principal: str, resource_type: int, name: str) -> set[int]:
    return {a.operation for a in acls if a.principal == principal and _matches(a, resource_type, name)}


def test_a_short_app_id_gets_nothing_on_names_that_merely_start_with_it() -> None:
    acls = acl_plan(Settings(app_id="a"))
    assert [str(a) for a in acls if a.pattern == PREFIXED and a.principal == WORKER] == [
        "User:worker ALL on topic names starting a-",
        "User:worker ALL on group names starting a-",
        "User:worker ALL on transactional id names starting a-",
    ]
    for topic in ("alert-commands", "account-snapshots", "alert-notifications", "alerts-x", "ab-changelog"):
        assert not [a for a in acls if a.pattern == PREFIXED and _matches(a, TOPIC, topic)], topic
    # the worker still only reads the alert commands (its literal grant), never writes them
    assert _granted(acls, WORKER, TOPIC, "alert-commands") == {3, 5, 8, 10}  # READ CREATE DESCRIBE DESCRIBE_CONFIGS
    assert _granted(acls, WORKER, TOPIC, "account-snapshots") == {3, 5, 8, 10}
    for group in ("alerts", "ab", "a.x"):
        assert _granted(acls, WORKER, GROUP, group) == set(), group
    assert _granted(acls, WORKER, TRANSACTIONAL_ID, "ab-0-1") == set()


def test_the_worker_keeps_what_faust_and_its_consumers_name_after_the_app_id() -> None:
    acls = acl_plan(Settings(app_id="a"))
    assert _granted(acls, WORKER, GROUP, "a") == {ALL}  # Faust's group id is the app id
    for group in ("a-ingest", "a-delivery", "a-alerts"):
        assert _granted(acls, WORKER, GROUP, group) == {ALL}, group
    for topic in ("a-windows-changelog", "a-__assignor-__leader"):  # Faust's changelogs, its assignor's topic
        assert _granted(acls, WORKER, TOPIC, topic) == {ALL}, topic
    assert _granted(acls, WORKER, TRANSACTIONAL_ID, "a-a-0") == {ALL}  # Faust: <app id>-<group>-<partition>
