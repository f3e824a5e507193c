"""The central table: keys, deduplication by key, TTL, batch writes and their leftovers."""

from __future__ import annotations

from datetime import timedelta

from correlator import events as ev
from correlator.records import parse_iso
from correlator.store import GSI1, GSI1_ATTRIBUTES, Store, table_definition
from tests.correlator.conftest import (
    SOURCE,
    TABLE,
    Recorder,
    anomaly,
    at,
    measured,
    reset,
    sqs_batch,
)

PROD = "111111111111"


def test_the_table_definition_is_what_the_template_must_create(central):
    described = central.dynamodb.describe_table(TableName=TABLE)["Table"]
    definition = table_definition(TABLE)
    assert described["KeySchema"] == definition["KeySchema"]
    (gsi,) = described["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == GSI1
    assert gsi["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": list(GSI1_ATTRIBUTES),
    }
    ttl = central.dynamodb.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")


def test_every_record_is_stored_once_with_a_ttl_from_its_backup_and_the_history_setting(
    central,
):
    correlator = central.correlator(history_days=30)
    normal = measured(PROD, "vol-0a1", 1)
    rewrite = anomaly(PROD, "vol-0a2", 1, "high")
    twin = anomaly(PROD, "vol-0a2", 1, "high", anomaly_event=True)
    deleted = reset(PROD, "vol-0a3", 1)

    assert correlator.handle_batch([(f"m{n}", e) for n, e in enumerate(
        [normal, rewrite, twin, normal, deleted, rewrite])]) == []  # fmt: skip

    items = central.dynamodb.scan(TableName=TABLE)["Items"]  # a test may look at everything
    records = [i for i in items if i.get("kind", {}).get("S") in ("measurement", "reset")]
    assert len(records) == 3  # duplicates (and the twin anomaly event) written once
    for item in records:
        completed = parse_iso(item["completionTime"]["S"])
        assert int(item["ttl"]["N"]) == int((completed + timedelta(days=30)).timestamp())
        assert item["gsi1pk"]["S"] == f"AR#{PROD}#eu-west-1"
    rewritten = next(i for i in records if i["volumeId"]["S"] == "vol-0a2")
    assert rewritten["pk"]["S"] == f"VOL#{rewrite['detail']['volumeArn']}"
    assert rewritten["sk"]["S"] == "M#2025-06-03T05:00:00.000000Z#snap-0a2d001#snap-0a2d000"
    assert (rewritten["severity"]["S"], float(rewritten["share"]["N"])) == ("high", 0.88)
    assert rewritten["measurementId"]["S"] == rewrite["detail"]["measurementId"]


def test_one_batch_write_per_sqs_batch_of_normal_measurements(central):
    calls = ("batch_write_item", "put_item", "update_item", "get_item", "query", "transact")
    db = Recorder(central.dynamodb, record=calls)
    correlator = central.correlator(central.clients(dynamodb=db))
    events = [measured(PROD, f"vol-0a{n}", 1) for n in range(10)]

    assert correlator.handle_batch([(f"m{n}", e) for n, e in enumerate(events)]) == []

    names = [name for name, _ in db.calls]
    # One BatchWriteItem; one "last heard" update for the account-region; nothing else.
    assert names == ["batch_write_item", "update_item"]
    (_, call) = db.calls[0]
    assert len(call["RequestItems"][TABLE]) == 10


def test_unprocessed_items_are_retried_and_what_is_left_is_retried_by_sqs(central):
    class Throttled:
        """A DynamoDB client whose BatchWriteItem leaves the first item unprocessed N times."""

        def __init__(self, client, times):
            self.client, self.times, self.meta = client, times, client.meta

        def __getattr__(self, name):
            return getattr(self.client, name)

        def batch_write_item(self, RequestItems):  # noqa: N803 - boto3's name
            requests = RequestItems[TABLE]
            if self.times > 0:
                self.times -= 1
                if requests[1:]:
                    self.client.batch_write_item(RequestItems={TABLE: requests[1:]})
                return {"UnprocessedItems": {TABLE: requests[:1]}}
            return self.client.batch_write_item(RequestItems=RequestItems)

    events = [measured(PROD, "vol-0a1", 1), measured(PROD, "vol-0a2", 1)]
    retried = central.correlator(central.clients(dynamodb=Throttled(central.dynamodb, 2)))
    assert retried.handle_batch([("m1", events[0]), ("m2", events[1])]) == []

    events = [measured(PROD, "vol-0a1", 2), measured(PROD, "vol-0a2", 2)]
    given_up = central.correlator(central.clients(dynamodb=Throttled(central.dynamodb, 99)))
    assert given_up.handle_batch([("m1", events[0]), ("m2", events[1])]) == ["m1"]


def test_a_redelivered_record_overwrites_its_own_item_with_the_same_content(central):
    correlator = central.correlator()
    event = anomaly(PROD, "vol-0a2", 1, "high")
    correlator.handle_batch([("m1", event)])
    key = {"pk": {"S": f"VOL#{event['detail']['volumeArn']}"}}
    first = central.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": key["pk"]},
    )["Items"]
    central.clock.advance(days=3)  # arrives days later: its TTL still counts from its backup
    correlator.handle_batch([("m2", event)])
    again = central.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": key["pk"]},
    )["Items"]
    assert again == first


def test_latest_normal_reads_only_later_judged_measurements(central):
    correlator = central.correlator()
    arn = measured(PROD, "vol-0a1", 1)["detail"]["volumeArn"]
    correlator.handle_batch(
        [
            ("a", anomaly(PROD, "vol-0a1", 1)),
            ("b", measured(PROD, "vol-0a1", 2, severity=None)),  # not judged: no recovery
            ("c", measured(PROD, "vol-0a1", 3, "low")),
            ("d", anomaly(PROD, "vol-0a1", 4, "medium")),
        ]
    )
    store: Store = correlator.store
    normal = store.latest_normal(arn, at(days=1))
    assert normal is not None and normal.time == at(days=3)
    assert store.latest_normal(arn, at(days=3)) is None
    assert store.measured_after(arn, at(days=1)) == at(days=4)


def test_heard_from_moves_forward_only(central):
    correlator = central.correlator()
    correlator.handle_batch([("a", measured(PROD, "vol-0a1", 3))])
    correlator._heard.clear()  # another execution environment
    correlator.handle_batch([("b", measured(PROD, "vol-0a1", 2))])
    (heard,) = correlator.store.heard()
    assert heard.last_measurement_at == at(days=3)


def test_a_sqs_batch_with_every_kind_of_event_is_processed(central, handler_env):
    from correlator import handler

    scan = {
        "version": "0",
        "id": "x",
        "detail-type": "Scan Job State Change",
        "source": "aws.backup",
        "account": PROD,
        "time": "2025-06-03T06:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {"state": "RUNNING"},
    }
    batch = sqs_batch([measured(PROD, "vol-0a1", 1), reset(PROD, "vol-0a3", 1), scan])
    assert handler.lambda_handler(batch, None) == {"batchItemFailures": []}
    assert ev.classify(scan, SOURCE).code == "scan_not_finished"
