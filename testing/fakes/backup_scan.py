"""A faithful loopback fake of AWS Backup's malware-scan API (moto has none).

It speaks the REST-JSON of the ``backup`` service (botocore model 2018-11-15), so a boto3
``backup`` client pointed at it with ``endpoint_url`` goes through its whole real path:
parameter validation, SigV4 signing, HTTP, response parsing, error parsing into
``client.exceptions.*``, the standard retry mode on 5xx. What it models:

* ``StartScanJob``: ``PUT /scan/job`` with a JSON body, answered ``201`` with
  ``{"ScanJobId", "CreationDate"}``; ``MalwareScanner`` GUARDDUTY only; ``ScanMode``
  FULL_SCAN or INCREMENTAL_SCAN; an incremental scan needs ``ScanBaseRecoveryPointArn``,
  of the same resource, created earlier and scanned before; ``IdempotencyToken``: the
  same token with the same parameters returns the same job;
* ``DescribeScanJob``: ``GET /scan/jobs/{ScanJobId}``;
* ``ListScanJobs``: ``GET /scan/jobs`` with the ``By*`` filters, ``MaxResults`` 1..1000
  and an opaque ``NextToken``; jobs of the last 30 days, newest first;
* timestamps as epoch seconds (REST-JSON's default), the errors of the model with the
  status codes the AWS Backup API reference gives them (400; 500 for
  ServiceUnavailableException, e.g.
  https://docs.aws.amazon.com/aws-backup/latest/devguide/API_DescribeProtectedResource.html),
  an ``x-amzn-ErrorType`` header and a ``{"Code", "Message", "Type", "Context"}`` body;
* jobs that move CREATED -> RUNNING -> COMPLETED (or the final state and result set for
  their recovery point) when the test calls :meth:`FakeBackupScan.advance`, each change
  handed to ``on_event`` as the ``Scan Job State Change`` EventBridge event AWS Backup
  would emit (shape of the AWS Backup developer guide's "Malware scan job events",
  https://docs.aws.amazon.com/aws-backup/latest/devguide/eventbridge.html), so a test can
  put it on moto's EventBridge.

Assumptions where the documentation is silent (each marked "assumed" below): the error
chosen for each invalid combination, the order of ListScanJobs, ``CreatedBy`` left out
for on-demand scans (the model marks it required; a scan started by a plan's ScanActions
carries it), the status message texts.

``ListScanJobSummaries`` is not modelled. In-process only (``on_event`` is a callable).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

SCANNERS = ("GUARDDUTY",)
SCAN_MODES = ("FULL_SCAN", "INCREMENTAL_SCAN")
RESOURCE_TYPES = ("EBS", "EC2", "S3")
RESULTS = ("NO_THREATS_FOUND", "THREATS_FOUND", "UNKNOWN")
STATES = ("CANCELED", "COMPLETED", "COMPLETED_WITH_ISSUES", "CREATED", "FAILED", "RUNNING")
FINAL_STATES = ("COMPLETED", "COMPLETED_WITH_ISSUES", "FAILED", "CANCELED")
LIST_MAX_RESULTS = 1000
LIST_DAYS = 30
_VAULT_NAME = re.compile(r"^[a-zA-Z0-9\-\_]{2,50}$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$")
_ACCOUNT = re.compile(r"^[0-9]{12}$")
_JOB_PATH = re.compile(r"^/scan/jobs/([^/]+)$")
_REQUIRED = (
    "BackupVaultName",
    "IamRoleArn",
    "MalwareScanner",
    "RecoveryPointArn",
    "ScanMode",
    "ScannerRoleArn",
)
_STATUS = {
    "InvalidParameterValueException": 400,
    "InvalidRequestException": 400,
    "LimitExceededException": 400,
    "MissingParameterValueException": 400,
    "ResourceNotFoundException": 400,
    "ServiceUnavailableException": 500,
}


class _ApiError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS.get(code, 400)


@dataclass
class RecoveryPoint:
    """A recovery point the fake can scan, and what its scan finds."""

    arn: str
    vault: str
    resource_arn: str
    resource_type: str
    resource_name: str
    created_at: datetime
    result: str
    final_state: str


@dataclass
class ScanJob:
    """One scan job, as DescribeScanJob shows it."""

    job_id: str
    scan_id: str
    account: str
    region: str
    vault: str
    recovery_point: RecoveryPoint
    iam_role_arn: str
    scanner_role_arn: str
    scanner: str
    mode: str
    base_arn: str | None
    created_at: datetime
    state: str = "CREATED"
    result: str | None = None
    completed_at: datetime | None = None
    status_message: str | None = None
    token: str | None = None
    request: dict[str, Any] = field(default_factory=dict)


def _epoch(value: datetime) -> float:
    return round(value.timestamp(), 3)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(raw: str, name: str) -> datetime:
    try:
        if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", raw):
            return datetime.fromtimestamp(float(raw), UTC)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        raise _ApiError("InvalidParameterValueException", f"{name} is not a timestamp") from None


class FakeBackupScan:
    """In-process fake of the AWS Backup scan API on 127.0.0.1.

    Args:
        account: the account the fake serves (``AccountId`` of its jobs and vaults).
        region: its region (ARNs, events).
        on_event: called with each ``Scan Job State Change`` event (the ``CREATED`` one
            from the server's request thread, the others from :meth:`advance`).
        clock: the current time (creation and completion dates).
    """

    def __init__(
        self,
        *,
        account: str = "111122223333",
        region: str = "us-east-1",
        on_event: Callable[[dict[str, Any]], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.account = account
        self.region = region
        self.on_event = on_event
        self.clock = clock
        self.events: list[dict[str, Any]] = []
        self._secret = os.urandom(16)
        self._lock = threading.RLock()
        self._vaults: dict[str, str] = {}
        self._points: dict[str, RecoveryPoint] = {}
        self._jobs: dict[str, ScanJob] = {}
        self._tokens: dict[str, str] = {}
        self._faults: list[_ApiError] = []
        self.requests = 0
        self._httpd: ThreadingHTTPServer | None = None

    # -- registration ---------------------------------------------------------------------

    def vault_arn(self, name: str) -> str:
        return f"arn:aws:backup:{self.region}:{self.account}:backup-vault:{name}"

    def add_vault(self, name: str) -> str:
        """Registers a backup vault; returns its ARN."""
        with self._lock:
            self._vaults[name] = self.vault_arn(name)
        return self._vaults[name]

    def add_recovery_point(
        self,
        arn: str,
        *,
        vault: str,
        resource_arn: str,
        resource_type: str = "EBS",
        resource_name: str = "",
        created_at: datetime | None = None,
        result: str = "NO_THREATS_FOUND",
        final_state: str = "COMPLETED",
    ) -> RecoveryPoint:
        """Registers a recovery point in a vault and what a scan of it will find.

        Args:
            arn: its ARN (``arn:aws:ec2:REGION::snapshot/snap-...`` for EBS).
            vault: the vault holding it (registered first).
            resource_arn: the resource it backs up.
            resource_type: EBS, EC2 or S3.
            resource_name: the resource's name.
            created_at: when it was created (default: now).
            result: THREATS_FOUND, NO_THREATS_FOUND or UNKNOWN (None with FAILED).
            final_state: COMPLETED, COMPLETED_WITH_ISSUES, FAILED or CANCELED.
        """
        if vault not in self._vaults:
            raise ValueError(f"vault {vault} is not registered")
        if resource_type not in RESOURCE_TYPES or final_state not in FINAL_STATES:
            raise ValueError("unknown resource type or final state")
        point = RecoveryPoint(
            arn,
            vault,
            resource_arn,
            resource_type,
            resource_name,
            created_at or self.clock(),
            result,
            final_state,
        )
        with self._lock:
            self._points[arn] = point
        return point

    def set_result(self, arn: str, result: str, final_state: str = "COMPLETED") -> None:
        """Changes what scans of a recovery point started from now on will find."""
        with self._lock:
            self._points[arn] = replace(self._points[arn], result=result, final_state=final_state)

    def inject_error(self, code: str, message: str = "Injected error.") -> None:
        """Makes the next request fail with this modelled error (its status from the model)."""
        with self._lock:
            self._faults.append(_ApiError(code, message))

    # -- progression -----------------------------------------------------------------------

    def jobs(self) -> list[ScanJob]:
        with self._lock:
            return list(self._jobs.values())

    def advance(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Moves every unfinished job (or one) a state on; returns the events emitted."""
        emitted = []
        with self._lock:
            jobs = [self._jobs[job_id]] if job_id else list(self._jobs.values())
            for job in jobs:
                if job.state == "CREATED":
                    job.state = "RUNNING"
                elif job.state == "RUNNING":
                    point = job.recovery_point
                    job.state = point.final_state
                    job.completed_at = self.clock()
                    job.result = point.result if point.final_state != "FAILED" else None
                    if job.state == "CANCELED":
                        job.result = None
                    job.status_message = {
                        "COMPLETED": "An AWS Backup scan job was successful completed.",
                        "COMPLETED_WITH_ISSUES": "Scan job partially completed.",
                        "FAILED": "Scan job failed.",
                        "CANCELED": "Scan job was stopped by user.",
                    }[job.state]  # assumed texts
                else:
                    continue
                emitted.append(self._event(job))
        for event in emitted:
            self._emit(event)
        return emitted

    def run_to_completion(self) -> list[dict[str, Any]]:
        """Advances every job until each has finished; returns the events (bounded)."""
        emitted = []
        for _ in range(3):
            emitted += self.advance()
        return emitted

    def _emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _event(self, job: ScanJob) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "accountId": job.account,
            "backupVaultArn": self._vaults[job.vault],
            "backupVaultName": job.vault,
            "creationDate": _iso(job.created_at),
            "iamRoleArn": job.iam_role_arn,
            "scannerRoleArn": job.scanner_role_arn,
            "recoveryPointArn": job.recovery_point.arn,
            "resourceArn": job.recovery_point.resource_arn,
            "resourceType": job.recovery_point.resource_type,
            "scanId": job.scan_id,
            "scanJobId": job.job_id,
            "malwareScanner": job.scanner,
            "state": job.state,
        }
        if job.base_arn:
            detail["scanBaseRecoveryPointArn"] = job.base_arn
        if job.completed_at is not None:
            detail["completionDate"] = _iso(job.completed_at)
        if job.result is not None:
            detail["scanResult"] = {"scanResultStatus": job.result}
        if job.status_message:
            detail["statusMessage"] = job.status_message
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scan Job State Change",
            "source": "aws.backup",
            "account": job.account,
            "time": _iso(self.clock()),
            "region": job.region,
            "resources": [job.recovery_point.arn],
            "detail": detail,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL for ``endpoint_url``."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeBackupScan:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = _Server(("127.0.0.1", 0), handler)
        thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeBackupScan:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- operations --------------------------------------------------------------------------

    def _admit(self) -> None:
        with self._lock:
            self.requests += 1
            if self._faults:
                raise self._faults.pop(0)

    def start_scan_job(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict | None]:
        missing = [name for name in _REQUIRED if not body.get(name)]
        if missing:
            raise _ApiError("MissingParameterValueException", f"Missing {missing[0]}.")
        scanner, mode = body["MalwareScanner"], body["ScanMode"]
        if scanner not in SCANNERS:
            raise _ApiError(
                "InvalidParameterValueException", f"Invalid MalwareScanner '{scanner}'."
            )
        if mode not in SCAN_MODES:
            raise _ApiError("InvalidParameterValueException", f"Invalid ScanMode '{mode}'.")
        vault = body["BackupVaultName"]
        if not _VAULT_NAME.match(vault):
            raise _ApiError("InvalidParameterValueException", f"Invalid BackupVaultName '{vault}'.")
        for name in ("IamRoleArn", "ScannerRoleArn"):
            if not _ROLE_ARN.match(body[name]):
                raise _ApiError("InvalidParameterValueException", f"Invalid {name}.")
        with self._lock:
            token = body.get("IdempotencyToken")
            if token and token in self._tokens:
                job = self._jobs[self._tokens[token]]
                if job.request != body:
                    # assumed: the model has no parameter-mismatch error of its own
                    raise _ApiError(
                        "InvalidRequestException",
                        "IdempotencyToken was used with different parameters.",
                    )
                return 201, {"ScanJobId": job.job_id, "CreationDate": _epoch(job.created_at)}, None
            if vault not in self._vaults:
                raise _ApiError("ResourceNotFoundException", f"Backup vault {vault} not found.")
            point = self._points.get(body["RecoveryPointArn"])
            if point is None or point.vault != vault:
                raise _ApiError(
                    "ResourceNotFoundException",
                    f"Recovery point {body['RecoveryPointArn']} not found in {vault}.",
                )
            base_arn = body.get("ScanBaseRecoveryPointArn")
            self._check_base(mode, point, base_arn, vault)
            now = self.clock()
            job = ScanJob(
                job_id=str(uuid.uuid4()),
                scan_id=str(uuid.uuid4()),
                account=self.account,
                region=self.region,
                vault=vault,
                recovery_point=point,
                iam_role_arn=body["IamRoleArn"],
                scanner_role_arn=body["ScannerRoleArn"],
                scanner=scanner,
                mode=mode,
                base_arn=base_arn,
                created_at=now,
                token=token,
                request=dict(body),
            )
            self._jobs[job.job_id] = job
            if token:
                self._tokens[token] = job.job_id
            event = self._event(job)
        return 201, {"ScanJobId": job.job_id, "CreationDate": _epoch(job.created_at)}, event

    def _check_base(self, mode: str, point: RecoveryPoint, base_arn: str | None, vault: str):
        if mode == "FULL_SCAN":
            if base_arn:  # assumed: a base point only makes sense incrementally
                raise _ApiError(
                    "InvalidParameterValueException",
                    "ScanBaseRecoveryPointArn applies to INCREMENTAL_SCAN only.",
                )
            return
        if not base_arn:  # assumed error type; the requirement is documented
            raise _ApiError(
                "InvalidParameterValueException",
                "ScanBaseRecoveryPointArn is required for INCREMENTAL_SCAN.",
            )
        base = self._points.get(base_arn)
        if base is None:
            raise _ApiError("ResourceNotFoundException", f"Recovery point {base_arn} not found.")
        if base.resource_arn != point.resource_arn:
            raise _ApiError(
                "InvalidParameterValueException",
                "The base recovery point is not of the same resource.",
            )
        if base.created_at >= point.created_at:
            raise _ApiError(
                "InvalidParameterValueException",
                "The base recovery point must be created before the target recovery point.",
            )
        scanned = any(
            j.recovery_point.arn == base_arn and j.state in ("COMPLETED", "COMPLETED_WITH_ISSUES")
            for j in self._jobs.values()
        )
        if not scanned:  # assumed error type; "scanned before" is documented
            raise _ApiError(
                "InvalidRequestException", "The base recovery point has not been scanned."
            )

    def describe(self, job: ScanJob) -> dict[str, Any]:
        out: dict[str, Any] = {
            "AccountId": job.account,
            "BackupVaultArn": self._vaults[job.vault],
            "BackupVaultName": job.vault,
            "CreationDate": _epoch(job.created_at),
            "IamRoleArn": job.iam_role_arn,
            "MalwareScanner": job.scanner,
            "RecoveryPointArn": job.recovery_point.arn,
            "ResourceArn": job.recovery_point.resource_arn,
            "ResourceName": job.recovery_point.resource_name,
            "ResourceType": job.recovery_point.resource_type,
            "ScanId": job.scan_id,
            "ScanJobId": job.job_id,
            "ScanMode": job.mode,
            "ScannerRoleArn": job.scanner_role_arn,
            "State": job.state,
        }
        if job.base_arn:
            out["ScanBaseRecoveryPointArn"] = job.base_arn
        if job.completed_at is not None:
            out["CompletionDate"] = _epoch(job.completed_at)
        if job.result is not None:
            out["ScanResult"] = {"ScanResultStatus": job.result}
        if job.status_message:
            out["StatusMessage"] = job.status_message
        return out

    def describe_scan_job(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise _ApiError("ResourceNotFoundException", f"Scan job {job_id} not found.")
            return self.describe(job)

    def list_scan_jobs(self, query: dict[str, str]) -> dict[str, Any]:
        raw_max = query.get("MaxResults")
        try:
            max_results = int(raw_max) if raw_max is not None else LIST_MAX_RESULTS
        except ValueError:
            max_results = 0
        if not 1 <= max_results <= LIST_MAX_RESULTS:
            raise _ApiError("InvalidParameterValueException", "MaxResults must be 1..1000.")
        enums = {
            "ByMalwareScanner": SCANNERS,
            "ByResourceType": RESOURCE_TYPES,
            "ByScanResultStatus": RESULTS,
            "ByState": STATES,
        }
        for name, allowed in enums.items():
            if name in query and query[name] not in allowed:
                raise _ApiError("InvalidParameterValueException", f"Invalid {name}.")
        if "ByAccountId" in query and not (
            query["ByAccountId"] == "*" or _ACCOUNT.match(query["ByAccountId"])
        ):
            raise _ApiError("InvalidParameterValueException", "Invalid ByAccountId.")
        after = (
            _parse_time(query["ByCompleteAfter"], "ByCompleteAfter")
            if ("ByCompleteAfter" in query)
            else None
        )
        before = (
            _parse_time(query["ByCompleteBefore"], "ByCompleteBefore")
            if ("ByCompleteBefore" in query)
            else None
        )
        horizon = self.clock() - timedelta(days=LIST_DAYS)
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.created_at >= horizon]
            chosen = []
            for job in jobs:
                if not self._matches(job, query, after, before):
                    continue
                chosen.append(job)
            # assumed: newest first
            chosen.sort(key=lambda j: (j.created_at, j.job_id), reverse=True)
            start = self._read_token(query["NextToken"]) if query.get("NextToken") else 0
            page = chosen[start : start + max_results]
            out: dict[str, Any] = {"ScanJobs": [self.describe(j) for j in page]}
            if start + max_results < len(chosen):
                out["NextToken"] = self._make_token(start + max_results)
        return out

    @staticmethod
    def _matches(
        job: ScanJob, query: dict[str, str], after: datetime | None, before: datetime | None
    ) -> bool:
        checks = {
            "ByAccountId": job.account,
            "ByBackupVaultName": job.vault,
            "ByMalwareScanner": job.scanner,
            "ByRecoveryPointArn": job.recovery_point.arn,
            "ByResourceArn": job.recovery_point.resource_arn,
            "ByResourceType": job.recovery_point.resource_type,
            "ByScanResultStatus": job.result,
            "ByState": job.state,
        }
        for name, value in checks.items():
            wanted = query.get(name)
            if wanted is None or (name == "ByAccountId" and wanted == "*"):
                continue
            if wanted != value:
                return False
        if after is not None and (job.completed_at is None or job.completed_at <= after):
            return False
        return not (before is not None and (job.completed_at is None or job.completed_at >= before))

    def _make_token(self, offset: int) -> str:
        body = str(offset).encode()
        mac = hmac.new(self._secret, body, hashlib.sha256).hexdigest()[:16].encode()
        return base64.urlsafe_b64encode(body + b"." + mac).decode()

    def _read_token(self, token: str) -> int:
        try:
            body, mac = base64.urlsafe_b64decode(token.encode()).split(b".", 1)
            want = hmac.new(self._secret, body, hashlib.sha256).hexdigest()[:16].encode()
            if hmac.compare_digest(mac, want):
                return int(body)
        except (ValueError, TypeError):
            pass
        raise _ApiError("InvalidParameterValueException", "The NextToken is invalid.")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a client hanging up mid-response is normal at teardown
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, so boto3's connection pool is reused as with AWS."""

    protocol_version = "HTTP/1.1"
    fake: FakeBackupScan

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        pass

    def _authorized(self) -> None:
        auth = self.headers.get("Authorization") or ""
        if not auth:
            raise _ApiError(
                "MissingAuthenticationTokenException", "Missing Authentication Token", 403
            )
        match = re.search(r"Credential=[^/]+/[0-9]{8}/([^/]+)/([^/]+)/aws4_request", auth)
        if not match or match.group(2) != "backup":
            raise _ApiError(
                "InvalidSignatureException", "Credential should be scoped to service 'backup'.", 403
            )

    def _dispatch(self, method: str) -> None:
        fake = self.fake
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        event = None
        try:
            self._authorized()
            fake._admit()
            query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            if method == "PUT" and split.path == "/scan/job":
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    raise _ApiError("InvalidRequestException", "The body is not JSON.") from None
                status, payload, event = fake.start_scan_job(body)
            elif method == "GET" and split.path == "/scan/jobs":
                status, payload = 200, fake.list_scan_jobs(query)
            elif method == "GET" and (match := _JOB_PATH.match(split.path)):
                status, payload = 200, fake.describe_scan_job(unquote(match.group(1)))
            else:
                raise _ApiError("UnknownOperationException", f"No route for {split.path}", 404)
        except _ApiError as err:
            kind = "Server" if err.status >= 500 else "User"  # assumed values of Type
            body = {"Code": err.code, "Message": err.message, "Type": kind, "Context": ""}
            self._send(err.status, json.dumps(body).encode(), {"x-amzn-ErrorType": err.code})
            return
        if event is not None:
            # Before the answer: a caller that has its job id also sees its CREATED event
            # (emitting after the answer raced with the caller's next look).
            fake._emit(event)
        self._send(status, json.dumps(payload).encode(), {})

    def do_PUT(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("PUT")

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
