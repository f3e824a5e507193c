"""The account-wide request budget: leases in the state table (moto DynamoDB)."""

import time

import boto3
import pytest
from moto import mock_aws

from backup_anomaly import budget as b
from backup_anomaly.budget import (
    RAMP_START,
    FixedBudget,
    SharedBudget,
    SharedLease,
    budget_key,
    water_fill,
)
from backup_anomaly.changed_blocks import count_changed_blocks
from testing.fakes.ebs_direct import BLOCKS_PER_GIB
from tests.counting._support import make_client, new_pair_ids

TABLE = "backup-anomaly-state"


class Clock:
    """Wall clock under the test's control (leases are compared across holders by it)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dynamodb():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "VolumeArn", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "VolumeArn", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


@pytest.fixture
def clock():
    return Clock()


def manual(dynamodb, clock, rate=50.0, api=b.LIST_CHANGED_BLOCKS) -> SharedBudget:
    return SharedBudget(dynamodb, TABLE, api, rate, clock=clock, auto_refresh=False)


def leases(dynamodb, api=b.LIST_CHANGED_BLOCKS) -> dict:
    item = dynamodb.get_item(TableName=TABLE, Key={"VolumeArn": {"S": budget_key(api)}})
    return {k: v for k, v in item.get("Item", {}).items() if k.startswith("L#")}


def test_water_fill_shares_equally_and_passes_on_what_a_capped_holder_leaves():
    assert water_fill(50, {"a": float("inf"), "b": float("inf")}) == {"a": 25, "b": 25}
    assert water_fill(50, {"a": 10, "b": float("inf"), "c": float("inf")}) == {
        "a": 10,
        "b": 20,
        "c": 20,
    }
    assert water_fill(50, {"a": 10, "b": 5}) == {"a": 10, "b": 5}


def test_budget_keys_never_collide_with_volume_arns():
    for api in (b.LIST_CHANGED_BLOCKS, b.GET_SNAPSHOT_BLOCK):
        assert budget_key(api).startswith("#budget/ebs/")
        assert not budget_key(api).startswith("arn:")
    assert budget_key(b.LIST_CHANGED_BLOCKS) != budget_key(b.GET_SNAPSHOT_BLOCK)


def test_a_lone_holder_gets_the_whole_budget_and_its_lease_appears_then_goes(dynamodb, clock):
    budget = manual(dynamodb, clock)
    with budget.lease() as lease:
        assert lease.rate() == lease.share == 50.0
        assert list(leases(dynamodb)) == [lease.attribute]
        assert lease.degraded is None
    assert leases(dynamodb) == {}
    assert lease.writes == 2  # join, leave


def test_concurrent_holders_share_fairly_and_recover_the_share_of_one_that_leaves(dynamodb, clock):
    budget = manual(dynamodb, clock)
    with budget.lease() as first:
        with budget.lease() as second:
            # The newcomer sees the first at once; the first sees it at its next renewal.
            assert second.share == 25.0
            assert RAMP_START * 25.0 <= second.rate() <= 25.0
            first.refresh()
            assert first.share == 25.0 and first.live == 2
            with budget.lease() as third:
                first.refresh()
                second.refresh()
                assert {first.share, second.share, third.share} == {50 / 3}
                assert len(leases(dynamodb)) == 3
        first.refresh()
        assert first.share == 50.0 and first.live == 1


def test_a_crashed_holders_lease_expires_and_is_collected(dynamodb, clock):
    budget = manual(dynamodb, clock)
    crashed = SharedLease(budget, None)
    crashed.join()  # and never renews nor leaves: its Lambda died
    with budget.lease() as survivor:
        assert survivor.share == 25.0
        clock.now += budget.lease_seconds + 0.1
        survivor.refresh()
        assert survivor.share == 50.0  # expired: no longer counted
        assert crashed.attribute in leases(dynamodb)  # not yet collected (grace period)
        clock.now += budget.lease_seconds
        survivor.refresh()
        assert crashed.attribute not in leases(dynamodb)
        assert survivor.attribute in leases(dynamodb)


def test_a_lease_renewed_meanwhile_is_never_collected(dynamodb, clock):
    budget = manual(dynamodb, clock)
    slow = SharedLease(budget, None)
    slow.join()
    seen_dead = leases(dynamodb)  # what another holder saw as long expired
    clock.now += 0.5
    slow.refresh()  # ... but it renewed (a new expiry) before the removal
    with budget.lease() as other:
        other._collect(seen_dead)  # conditional on the old value: does nothing
        assert slow.attribute in leases(dynamodb)
    slow.leave()
    assert leases(dynamodb) == {}


def test_a_capped_holder_leaves_the_rest_to_the_others(dynamodb, clock):
    budget = manual(dynamodb, clock)
    with budget.lease(cap=10) as small, budget.lease() as big:
        small.refresh()
        assert (small.share, big.share) == (10.0, 40.0)


def test_the_apis_have_separate_budgets(dynamodb, clock):
    lists = manual(dynamodb, clock, 50, b.LIST_CHANGED_BLOCKS)
    reads = manual(dynamodb, clock, 1000, b.GET_SNAPSHOT_BLOCK)
    with lists.lease() as count, reads.lease() as sampler:
        assert (count.share, sampler.share) == (50.0, 1000.0)
        assert len(leases(dynamodb, b.LIST_CHANGED_BLOCKS)) == 1
        assert len(leases(dynamodb, b.GET_SNAPSHOT_BLOCK)) == 1


def test_leases_live_beside_volume_items_without_touching_them(dynamodb, clock):
    arn = "arn:aws:ec2:us-east-1:123456789012:volume/vol-0abc"
    dynamodb.put_item(TableName=TABLE, Item={"VolumeArn": {"S": arn}, "Version": {"N": "3"}})
    with manual(dynamodb, clock).lease():
        pass
    item = dynamodb.get_item(TableName=TABLE, Key={"VolumeArn": {"S": arn}})["Item"]
    assert item == {"VolumeArn": {"S": arn}, "Version": {"N": "3"}}


def test_without_the_table_the_lease_degrades_to_the_full_budget(dynamodb, clock, caplog):
    budget = SharedBudget(dynamodb, "no-such-table", b.LIST_CHANGED_BLOCKS, 40, clock=clock)
    with budget.lease() as lease:
        assert lease.degraded is not None
        assert lease.rate() == 40.0
    assert "degraded" in caplog.text


def test_background_renewal_converges_to_fair_shares(dynamodb):
    budget = SharedBudget(
        dynamodb, TABLE, b.LIST_CHANGED_BLOCKS, 50, refresh_seconds=0.05, lease_seconds=0.5
    )
    with budget.lease() as first, budget.lease() as second:
        for _ in range(200):  # bounded: the renewals run every 50 ms
            if first.share == second.share == 25.0:
                break
            time.sleep(0.05)
        assert first.share == second.share == 25.0
        assert first.writes > 1
    assert leases(dynamodb) == {}


def test_fixed_budget_is_todays_per_count_limit():
    with FixedBudget(40).lease() as lease:
        assert lease.rate() == 40
    with FixedBudget(40).lease(cap=25) as lease:
        assert lease.rate() == 25
    with pytest.raises(ValueError):
        FixedBudget(0)


def test_a_count_holds_a_lease_while_it_runs_and_gives_it_back(fake, dynamodb, clock):
    client = make_client(fake.url)
    first, second = new_pair_ids()
    fake.add_pair(first, second, 8, [(0, 8 * BLOCKS_PER_GIB)])
    budget = manual(dynamodb, clock, rate=10_000)
    seen = []
    real = SharedLease.join

    def join(self):
        real(self)
        seen.append(dict(leases(dynamodb)))

    SharedLease.join = join
    try:
        result = count_changed_blocks(
            client, first, second, budget=budget, max_requests_per_second=10_000, page_size=1000
        )
    finally:
        SharedLease.join = real
    assert result.changed_blocks == 16_384 and result.complete
    assert len(seen) == 1 and len(seen[0]) == 1  # it held one lease while counting
    assert leases(dynamodb) == {}  # and gave it back


def test_a_large_crowd_renews_less_often_with_longer_leases(dynamodb, clock):
    budget = manual(dynamodb, clock)
    crowd = [SharedLease(budget, None) for _ in range(2 * b.RENEWALS_PER_SECOND)]
    for lease in crowd:
        lease.join()
    last = crowd[0]
    last.refresh()  # learns the crowd's size ...
    assert last.live == len(crowd) and last._spread() == 2.0
    last.refresh()  # ... and from then on writes leases that last as long as its renewals
    stored = leases(dynamodb)[last.attribute]["S"]
    assert int(stored.split(":")[0]) == int((clock.now + 2 * budget.lease_seconds) * 1000)
    for lease in crowd:
        lease.leave()
    assert leases(dynamodb) == {}


def test_a_one_page_count_never_touches_the_budget(fake, dynamodb, clock, monkeypatch):
    client = make_client(fake.url)
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 150)])
    joins = []
    monkeypatch.setattr(SharedLease, "join", lambda self: joins.append(self))
    result = count_changed_blocks(client, first, second, budget=manual(dynamodb, clock))
    assert (result.changed_blocks, result.api_calls, joins) == (150, 1, [])


def test_a_resumed_count_joins_before_its_first_request(fake, dynamodb, clock, monkeypatch):
    from backup_anomaly.changed_blocks import CountCheckpoint

    client = make_client(fake.url)
    first, second = new_pair_ids()
    fake.add_pair(first, second, 1, [(0, 2000)])
    checkpoint = CountCheckpoint(first, second, 0, 0, ((0, 1000, None), (1000, 2048, None)), 1)
    calls_at_join = []
    real = SharedLease.join
    monkeypatch.setattr(
        SharedLease, "join", lambda self: (calls_at_join.append(fake.requests_served), real(self))
    )
    result = count_changed_blocks(
        client, first, second, checkpoint=checkpoint, budget=manual(dynamodb, clock), page_size=100
    )
    assert result.changed_blocks == 2000 and calls_at_join == [0]
    assert leases(dynamodb) == {}
