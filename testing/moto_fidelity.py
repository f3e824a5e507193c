"""Make moto behave like AWS where the rollout and the demo depend on it.

Each patch closes one documented gap of moto 5.2 so that the SAME rollout code runs
against it unchanged; none changes what the code under test sends. Applied only by the
demo and the tests, inside :func:`faithful_moto`, and undone on exit.

1. Organizations reads from a member account (the delegated admin) answer from the
   organization, as AWS answers a delegated administrator; moto answers from an empty
   per-account backend.
2. SERVICE_MANAGED stack instances: moto ignores ``AccountFilterType``, reads the
   organization of the StackSet's own account (empty for a delegated admin), goes only one
   OU level down, and would deploy to the management account. AWS does none of this.
   And an instance's stack gets the StackSet's parameters with the overrides on top (moto
   uses the overrides alone, so a stack misses every parameter not overridden).
3. Update/DeleteStackInstances with ``DeploymentTargets`` (SERVICE_MANAGED): moto reads only
   ``Accounts`` and so updates or deletes nothing.
4. ``AutoDeployment`` and ``ManagedExecution`` are stored and returned by DescribeStackSet
   (moto drops them, which would make every plan show a change).
5. EventBridge: a rule targeting another account's bus keeps the event's ``account``,
   ``region``, ``time`` and ``resources`` (moto re-stamps them with the receiving account),
   a rule targeting SNS publishes to the topic (moto raises NotImplementedError), and a
   rule with a schedule and no pattern matches no event (moto sends it every event).
6. ``AWS::KMS::Key`` in CloudFormation: moto reads the resource's ``Tags`` in the KMS API's
   shape (TagKey/TagValue) and fails on CloudFormation's Key/Value.
7. ``Ref`` to an ``AWS::Events::EventBus`` is its name in AWS; moto hands the object over,
   and a rule on that bus then fails to create.
8. EBS direct API ``StartSnapshot(ParentSnapshotId=...)``: the new snapshot starts with its
   parent's blocks (an incremental snapshot, as AWS Backup makes them); moto ignores the
   parent, so every snapshot would have to rewrite the whole volume.
9. Lambda runs no code here: an SQS event source mapping leaves the messages in the queue,
   untouched, for whoever stands in for Lambda. moto polls a queue's mappings on every send:
   it receives every visible message (each receive counts towards the redrive policy, so a
   busy queue's messages reach its dead-letter queue unprocessed), tries to start a docker
   container per batch, fails and logs the failure.
10. EventBridge delivers the whole event to a target without an input transformer; moto's
    default template drops its ``account`` field.
11. PutEvents naming another account's bus by ARN delivers there (AWS does, which is how the
    detector reports measurements centrally); moto looks for a bus of that name locally.
12. (opt-in, ``faithful_changed_blocks``) ListChangedBlocks as AWS answers it.
13. Security Hub: BatchImportFindings with the default product accepts only findings of the
    calling account, and once a finding exists an import cannot change its Note,
    UserDefinedFields, VerificationState or Workflow (the customer's fields); moto accepts
    any account and overwrites everything. BatchUpdateFindings (Workflow, Note) exists in
    AWS and not in moto. Both as the API reference describes them:
    https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchImportFindings.html,
    https://docs.aws.amazon.com/securityhub/1.0/APIReference/API_BatchUpdateFindings.html
14. DescribeSnapshots reports ``FullSnapshotSizeInBytes`` (the snapshot's written blocks,
    512 KiB each, which the detector reads as the data written on the volume); moto leaves
    it out. It is set when the EBS direct API completes a snapshot, from its blocks:
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Snapshot.html
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from moto.cloudformation import models as cfn_models
from moto.cloudformation import responses as cfn_responses
from moto.ebs import models as ebs_models
from moto.ebs import responses as ebs_responses
from moto.events import models as events_models
from moto.events import utils as events_utils
from moto.kms import models as kms_models
from moto.organizations import models as org_models
from moto.organizations import responses as org_responses
from moto.organizations import utils as org_utils
from moto.securityhub import models as securityhub_models
from moto.securityhub import responses as securityhub_responses
from moto.securityhub import urls as securityhub_urls
from moto.sqs import models as sqs_models


def _org_backend(account_id: str, partition: str = "aws") -> Any:
    master = org_models.organizations_backends.master_accounts.get(account_id)
    owner, part = master if master else (account_id, partition)
    return org_models.organizations_backends[owner][part]


# -- 1 ----------------------------------------------------------------------------------------


def _organizations_backend(self: Any) -> Any:
    return _org_backend(self.current_account, self.partition)


# -- 2 and 3 ----------------------------------------------------------------------------------


def _accounts_under(org: Any, ou_ids: list[str]) -> list[str]:
    found: list[str] = []
    pending = list(ou_ids)
    seen: set[str] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        found += [a.id for a in org.accounts if a.parent_id == current and a.status == "ACTIVE"]
        pending += [ou.id for ou in org.ou if getattr(ou, "parent_id", None) == current]
    return found


def _resolve_targets(
    account_id: str, partition: str, accounts: list[str], targets: dict[str, Any] | None
) -> list[str]:
    if not targets or not targets.get("OrganizationalUnitIds"):
        return list(accounts)
    org = _org_backend(account_id, partition)
    members = _accounts_under(org, targets["OrganizationalUnitIds"])
    listed = set(targets.get("Accounts") or [])
    kind = targets.get("AccountFilterType")
    if kind == "INTERSECTION":
        members = [a for a in members if a in listed]
    elif kind == "DIFFERENCE":
        members = [a for a in members if a not in listed]
    elif kind == "UNION":
        members = members + [a for a in listed if a not in members]
    management = org.org.master_account_id if org.org else None
    return list(dict.fromkeys(a for a in members if a != management))


def _create_instances(
    self: Any,
    accounts: list[str],
    regions: list[str],
    parameters: Any,
    deployment_targets: dict[str, Any],
    permission_model: str,
) -> list[dict[str, Any]]:
    targets = _resolve_targets(self.account_id, self.partition, accounts, deployment_targets)
    overrides = parameters if isinstance(parameters, list) else []
    merged = {
        **getattr(self, "_stackset_parameters", {}),
        **{p["ParameterKey"]: p["ParameterValue"] for p in overrides},
    }
    new = []
    for region in regions:
        for account in targets:
            if self.get_instance(account, region) is not None:
                continue
            instance = cfn_models.StackInstance(
                account_id=account,
                region_name=region,
                stackset_id=self.stackset_id,
                stack_name=self.stack_name,
                name=self.stackset_name,
                template=self.template,
                parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in merged.items()],
                permission_model=permission_model,
            )
            instance.parameters = overrides  # what DescribeStackInstance reports
            new.append(instance)
    self.stack_instances += new
    return [i.to_dict() for i in new]


_original_create = cfn_models.StackSet.create_stack_instances


def _create_stack_instances(
    self: Any,
    accounts: list[str],
    regions: list[str],
    deployment_targets: Any,
    parameters: list[dict[str, Any]],
) -> str:
    # The instances are created from the StackSet's current template and parameters.
    self.instances._stackset_parameters = dict(self.parameters)
    self.instances.template = self.template
    return _original_create(
        self,
        accounts=accounts,
        regions=regions,
        deployment_targets=deployment_targets,
        parameters=parameters or [],
    )


def _targets_param(response: Any) -> list[str]:
    backend = response.cloudformation_backend
    return _resolve_targets(
        backend.account_id,
        backend.partition,
        response._get_param("Accounts", []),
        response._get_params().get("DeploymentTargets"),
    )


def _update_stack_instances(self: Any) -> Any:
    operation = self.cloudformation_backend.update_stack_instances(
        self._get_param("StackSetName"),
        _targets_param(self),
        self._get_param("Regions", []),
        self._get_param("ParameterOverrides", []),
    )
    return cfn_responses.ActionResult({"OperationId": operation["OperationId"]})


def _delete_stack_instances(self: Any) -> Any:
    stackset = self.cloudformation_backend.delete_stack_instances(
        self._get_param("StackSetName"),
        _targets_param(self),
        self._get_param("Regions", []),
    )
    return cfn_responses.ActionResult({"OperationId": stackset.operations[-1]["OperationId"]})


# -- 4 ----------------------------------------------------------------------------------------


def _remember_settings(original: Any) -> Any:
    def wrapper(self: Any) -> Any:
        result = original(self)
        stackset = self.cloudformation_backend.describe_stack_set(self._get_param("StackSetName"))
        params = self._get_params()
        if "AutoDeployment" in params:
            stackset.auto_deployment = {
                "Enabled": params["AutoDeployment"].get("Enabled") in (True, "true"),
                "RetainStacksOnAccountRemoval": params["AutoDeployment"].get(
                    "RetainStacksOnAccountRemoval"
                )
                in (True, "true"),
            }
        if "ManagedExecution" in params:
            stackset._managed = params["ManagedExecution"].get("Active") in (True, "true")
        return result

    return wrapper


def _managed_execution(self: Any) -> dict[str, Any]:
    return {"Active": getattr(self, "_managed", False)}


# -- 5 ----------------------------------------------------------------------------------------

_original_send = events_models.Rule.send_to_targets


def _send_to_targets(
    self: Any, original_event: dict[str, Any], transform_input: bool = True
) -> None:
    if getattr(self, "scheduled_expression", None) and not self.event_pattern._raw_pattern:
        return  # a schedule-only rule matches no event (moto matches it to every one)
    if not self.event_pattern.matches_event(original_event):
        return
    special, rest = [], []
    for target in self.targets:
        arn = target["Arn"].split(":")
        bus = arn[2] == "events" and arn[5].startswith("event-bus/")
        (special if bus or arn[2] == "sns" else rest).append(target)
    for target in special:
        _deliver(self, target, original_event, transform_input)
    if rest:
        saved, self.targets = self.targets, rest
        try:
            _original_send(self, original_event, transform_input)
        finally:
            self.targets = saved


def _deliver(rule: Any, target: dict[str, Any], event: dict[str, Any], transform: bool) -> None:
    _, partition, service, region, account, resource = target["Arn"].split(":", 5)
    if service == "events":
        bus_name = resource.split("/", 1)[1]
        backend = events_models.events_backends[account][region]
        bus = backend.describe_event_bus(bus_name)
        for other in list(bus.rules.values()):
            other.send_to_targets(dict(event))
        return
    from moto.sns.models import sns_backends

    if isinstance(event.get("time"), (int, float)):
        # moto keeps the envelope's time as epoch seconds; AWS writes ISO 8601.
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["time"]))
        event = {**event, "time": stamp}
    message: Any = event
    if transform and target.get("InputTransformer"):
        transformer = target["InputTransformer"]
        message = events_models.EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
    text = message if isinstance(message, str) else json.dumps(message)
    sns_backends[account][region].publish(message=text, arn=target["Arn"])


# -- 6 ----------------------------------------------------------------------------------------

_original_key = kms_models.Key.create_from_cloudformation_json.__func__


def _key_from_cloudformation(
    cls: Any,
    resource_name: str,
    cloudformation_json: Any,
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> Any:
    properties = dict(cloudformation_json.get("Properties", {}))
    properties["Tags"] = [
        {"TagKey": t["Key"], "TagValue": t["Value"]} if "Key" in t else t
        for t in properties.get("Tags", [])
    ]
    if isinstance(properties.get("KeyPolicy"), dict):
        properties["KeyPolicy"] = json.dumps(properties["KeyPolicy"])
    return _original_key(
        cls,
        resource_name,
        {**cloudformation_json, "Properties": properties},
        account_id,
        region_name,
        **kwargs,
    )


# -- 8 ----------------------------------------------------------------------------------------

_original_start = ebs_responses.EBSResponse.start_snapshot
_original_complete = ebs_models.EBSBackend.complete_snapshot


def _start_snapshot(self: Any) -> Any:
    result = _original_start(self)
    parent_id = self._get_param("ParentSnapshotId")
    if parent_id:
        snapshots = self.ebs_backend.snapshots
        child = snapshots[next(reversed(snapshots))]
        child.blocks = dict(snapshots[parent_id].blocks)
    return result


# -- 14 ---------------------------------------------------------------------------------------

_EBS_BLOCK_BYTES = 524288  # ListChangedBlocks' BlockSize, whatever length a test's block has


def _complete_snapshot(self: Any, snapshot_id: str) -> str:
    result = _original_complete(self, snapshot_id)
    snapshot = self.ec2_backend.snapshots.get(snapshot_id)
    if snapshot is not None:  # read by moto's DescribeSnapshots serializer
        snapshot.full_snapshot_size_in_bytes = (
            len(self.snapshots[snapshot_id].blocks) * _EBS_BLOCK_BYTES
        )
    return result


# -- 9 ----------------------------------------------------------------------------------------


class _NotPolled:
    """A queue's ``lambda_event_source_mappings``: always empty to moto's send path. The
    mappings stay in the Lambda backend, which lists them (the stand-in Lambda drains the
    queue a mapping names); what moto adds to the queue's own dict while patched is dropped,
    and a dict set in ``__init__`` is seen again once the patch is undone."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return self if obj is None else {}

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["lambda_event_source_mappings"] = value


# -- 10 ---------------------------------------------------------------------------------------

_WHOLE_EVENT = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
    '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
    '"detail": <detail>}'
)


# -- 11 ---------------------------------------------------------------------------------------

_original_put_events = events_models.EventsBackend.put_events


def _put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    local, entries = [], []
    for event in events:
        bus = event.get("EventBusName") or ""
        parts = bus.split(":")
        if bus.startswith("arn:") and (parts[4], parts[3]) != (self.account_id, self.region_name):
            entries.append(_put_remote(self, event, parts[4], parts[3], parts[5].split("/", 1)[1]))
        else:
            local.append(event)
            entries.append(None)
    results = iter(_original_put_events(self, local) if local else [])
    return [entry if entry is not None else next(results) for entry in entries]


def _put_remote(
    sender: Any, event: dict[str, Any], account: str, region: str, bus_name: str
) -> dict[str, Any]:
    event_id = str(uuid.uuid4())
    message = {
        "version": "0",
        "id": event_id,
        "detail-type": event["DetailType"],
        "source": event["Source"],
        "account": sender.account_id,
        "time": event.get("Time") or time.time(),
        "region": sender.region_name,
        "resources": event.get("Resources", []),
        "detail": json.loads(event["Detail"]),
        "ingestion-time": time.time(),
    }
    bus = events_models.events_backends[account][region].describe_event_bus(bus_name)
    for rule in list(bus.rules.values()):
        rule.send_to_targets(dict(message))
    return {"EventId": event_id}


# -- 13 ---------------------------------------------------------------------------------------

_CUSTOMER_FIELDS = ("Note", "UserDefinedFields", "VerificationState", "Workflow")


def _import_findings(self: Any, findings: list[dict[str, Any]]) -> tuple[int, int, list]:
    accepted, refused = [], []
    for finding in findings:
        if finding.get("AwsAccountId") != self.account_id or not str(
            finding.get("ProductArn", "")
        ).endswith(f":product/{self.account_id}/default"):
            refused.append(
                {
                    "Id": finding.get("Id", ""),
                    "ErrorCode": "AccessDeniedException",
                    "ErrorMessage": "the default product takes findings of the calling account",
                }
            )
            continue
        existing = next((f for f in self.findings if f.id == finding.get("Id")), None)
        if existing is not None:
            finding = {k: v for k, v in finding.items() if k not in _CUSTOMER_FIELDS}
        accepted.append(finding)
    failed, succeeded, failures = _original_import(self, accepted) if accepted else (0, 0, [])
    return failed + len(refused), succeeded, failures + refused


_original_import = securityhub_models.SecurityHubBackend.batch_import_findings


def _batch_update_findings(self: Any) -> str:
    body = json.loads(self.body or "{}")
    backend = self.securityhub_backend
    processed, unprocessed = [], []
    for ident in body.get("FindingIdentifiers", []):
        finding = next((f for f in backend.findings if f.id == ident.get("Id")), None)
        if finding is None or finding.data.get("ProductArn") != ident.get("ProductArn"):
            unprocessed.append(
                {
                    "FindingIdentifier": ident,
                    "ErrorCode": "FindingNotFound",
                    "ErrorMessage": "no such finding",
                }
            )
            continue
        for key in ("Workflow", "Note", "VerificationState", "UserDefinedFields"):
            if key in body:
                finding.data[key] = body[key]
        processed.append(ident)
    return json.dumps({"ProcessedFindings": processed, "UnprocessedFindings": unprocessed})


# -- applying ---------------------------------------------------------------------------------


@contextmanager
def faithful_moto() -> Iterator[None]:
    """Applies every patch above for the duration of the block (inside ``mock_aws``)."""
    with ExitStack() as stack:
        patches = [
            mock.patch.object(
                org_responses.OrganizationsResponse,
                "organizations_backend",
                property(_organizations_backend),
            ),
            mock.patch.object(cfn_models.StackInstances, "create_instances", _create_instances),
            mock.patch.object(
                cfn_models.StackSet, "create_stack_instances", _create_stack_instances
            ),
            mock.patch.object(
                cfn_responses.CloudFormationResponse,
                "update_stack_instances",
                _update_stack_instances,
            ),
            mock.patch.object(
                cfn_responses.CloudFormationResponse,
                "delete_stack_instances",
                _delete_stack_instances,
            ),
            mock.patch.object(
                cfn_responses.CloudFormationResponse,
                "create_stack_set",
                _remember_settings(cfn_responses.CloudFormationResponse.create_stack_set),
            ),
            mock.patch.object(
                cfn_responses.CloudFormationResponse,
                "update_stack_set",
                _remember_settings(cfn_responses.CloudFormationResponse.update_stack_set),
            ),
            mock.patch.object(
                cfn_models.StackSet, "managed_execution", property(_managed_execution)
            ),
            mock.patch.object(events_models.Rule, "send_to_targets", _send_to_targets),
            mock.patch.object(
                events_models.EventBus,
                "physical_resource_id",
                property(lambda self: self.name),
                create=True,
            ),
            mock.patch.object(
                kms_models.Key,
                "create_from_cloudformation_json",
                classmethod(_key_from_cloudformation),
            ),
            mock.patch.object(ebs_responses.EBSResponse, "start_snapshot", _start_snapshot),
            mock.patch.object(ebs_models.EBSBackend, "complete_snapshot", _complete_snapshot),
            mock.patch.object(
                sqs_models.Queue, "lambda_event_source_mappings", _NotPolled(), create=True
            ),
            mock.patch.object(events_models.EventsBackend, "put_events", _put_events),
            mock.patch.object(
                events_utils.EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE", _WHOLE_EVENT
            ),
            mock.patch.object(
                securityhub_models.SecurityHubBackend, "batch_import_findings", _import_findings
            ),
            mock.patch.object(
                securityhub_responses.SecurityHubResponse,
                "batch_update_findings",
                _batch_update_findings,
                create=True,
            ),
            mock.patch.dict(
                securityhub_urls.url_paths,
                {"{0}/findings/batchupdate$": securityhub_responses.SecurityHubResponse.dispatch},
            ),
        ]
        for patch in patches:
            stack.enter_context(patch)
        yield


@contextmanager
def chosen_ids(account_ids: list[str], ou_ids: list[str]) -> Iterator[None]:
    """CreateAccount / CreateOrganizationalUnit hand out these ids in order.

    moto draws random ids; the demo and the tests need the config's own.
    """
    accounts, ous = iter(account_ids), iter(ou_ids)
    with (
        mock.patch.object(org_utils, "make_random_account_id", lambda: next(accounts)),
        mock.patch.object(org_utils, "make_random_ou_id", lambda root_id: next(ous)),
    ):
        yield


# -- 12 ---------------------------------------------------------------------------------------
# EBS direct API ListChangedBlocks, for the content-sampling tests. AWS lists, in ascending
# index order, every block that differs between the two snapshots, including blocks only the
# second one has (without a FirstBlockToken: "absent if the first snapshot does not have the
# changed block that is on the second snapshot", API reference), starts at
# StartingBlockIndex, stops at MaxResults with a NextToken, and reports BlockSize 524288
# (bytes). moto 5.2 lists only blocks of the first snapshot, in insertion order, ignores the
# paging parameters and reports BlockSize 512. Applied by ``faithful_changed_blocks`` (on top
# of ``faithful_moto``), by the content-sampling tests and the demo.

_EBS_BLOCK_SIZE = 524288


def _list_changed_blocks(self: Any) -> Any:
    from moto.core.responses import ActionResult

    backend = self.ebs_backend
    first = backend.snapshots[self._get_param("FirstSnapshotId")]
    second = backend.snapshots[self._get_param("SecondSnapshotId")]
    token = self._get_param("NextToken")
    start = int(token) if token else int(self._get_param("StartingBlockIndex") or 0)
    limit = int(self._get_param("MaxResults") or 10000)
    changed = []
    for index in sorted(set(first.blocks) | set(second.blocks)):
        old, new = first.blocks.get(index), second.blocks.get(index)
        if index < start or new is None or (old is not None and old.block_data == new.block_data):
            continue
        entry: dict[str, Any] = {"BlockIndex": index, "SecondBlockToken": new.block_token}
        if old is not None:
            entry["FirstBlockToken"] = old.block_token
        changed.append(entry)
    result: dict[str, Any] = {
        "ChangedBlocks": changed[:limit],
        "VolumeSize": second.volume_size,
        "BlockSize": _EBS_BLOCK_SIZE,
    }
    if len(changed) > limit:
        result["NextToken"] = str(changed[limit]["BlockIndex"])
    return ActionResult(result)


@contextmanager
def faithful_changed_blocks() -> Iterator[None]:
    """ListChangedBlocks as AWS answers it (section 12), for the duration of the block."""
    with mock.patch.object(ebs_responses.EBSResponse, "list_changed_blocks", _list_changed_blocks):
        yield
