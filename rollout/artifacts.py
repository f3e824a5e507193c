"""Build the Lambda zip and member template, and upload them to every region's bucket.

Keys are content-addressed (the sha256 is in the key), so an object that already exists
is the same bytes: it is skipped after one HeadObject instead of uploaded again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from generator.config.model import OrgConfig
from generator.errors import UserError
from generator.layout import layout
from generator.naming import Names
from rollout.display import Display
from rollout.sessions import AwsSessions
from rollout.stacks import INLINE_TEMPLATE_LIMIT


@dataclass(frozen=True)
class Built:
    """The local artifacts of one build."""

    templates: dict[str, Path]
    lambda_path: Path
    lambda_key: str
    member_key: str

    def body(self, template: str) -> str:
        return self.templates[template].read_text()

    @property
    def member_path(self) -> Path:
        return self.templates["member"]


@dataclass(frozen=True)
class Upload:
    """One object in one artifact bucket, and whether this run uploaded it."""

    bucket: str
    key: str
    uploaded: bool


def build(config: OrgConfig, out_dir: Path) -> Built:
    """Synthesizes every template and the Lambda zip into ``out_dir``."""
    from generator.synth import synthesize

    result = synthesize(config, Path(out_dir))
    return Built(
        templates=dict(result.templates),
        lambda_path=Path(result.lambda_package.path),
        lambda_key=result.lambda_package.key,
        member_key=result.member_template_key,
    )


def object_url(sessions: AwsSessions, bucket: str, region: str, key: str) -> str:
    """The URL CloudFormation reads a template from."""
    if sessions.endpoint_url:
        return f"{sessions.endpoint_url.rstrip('/')}/{bucket}/{key}"
    return Names.s3_object_url(bucket, region, key)


def upload(
    sessions: AwsSessions, config: OrgConfig, built: Built, display: Display
) -> list[Upload]:
    """Puts the zip and the member template in every target region's artifact bucket.

    Raises:
        UserError: a bucket does not exist yet (``deploy`` creates it).
    """
    names = Names(config.name)
    admin = config.admin_account_id
    done: list[Upload] = []
    for region in layout(config).artifact_regions:
        s3 = sessions.client("s3", admin, region)
        bucket = names.artifact_bucket(admin, region)
        _require_bucket(s3, bucket, admin)
        for key, path in (
            (built.lambda_key, built.lambda_path),
            (built.member_key, built.member_path),
        ):
            if _exists(s3, bucket, key, admin):
                done.append(Upload(bucket, key, False))
                continue
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), ExpectedBucketOwner=admin)
            done.append(Upload(bucket, key, True))
    uploaded = sum(u.uploaded for u in done)
    display.line(
        f"artifacts: {uploaded} uploaded, {len(done) - uploaded} already present "
        f"in {len(done) // 2} region(s)"
    )
    return done


def large_template_url(
    sessions: AwsSessions, config: OrgConfig, name: str, body: str
) -> str | None:
    """Where a stack template over the inline limit is read from (None: pass it inline)."""
    if len(body.encode()) <= INLINE_TEMPLATE_LIMIT:
        return None
    home = config.security.home_region
    bucket = Names(config.name).artifact_bucket(config.admin_account_id, home)
    key = Names.stack_template_key(name, hashlib.sha256(body.encode()).hexdigest())
    return object_url(sessions, bucket, home, key)


def put_template(sessions: AwsSessions, config: OrgConfig, url: str, body: str) -> None:
    """Uploads a large stack template to the home region's bucket (once: the key is its hash)."""
    home = config.security.home_region
    bucket = Names(config.name).artifact_bucket(config.admin_account_id, home)
    key = "templates/" + url.rsplit("/templates/", 1)[1]
    admin = config.admin_account_id
    s3 = sessions.client("s3", admin, home)
    if not _exists(s3, bucket, key, admin):
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ExpectedBucketOwner=admin)


# Every call names the admin account as the bucket's owner: bucket names are predictable,
# and a bucket of that name in another account (made first, in a region not deployed yet)
# must never receive the code every member account runs; S3 answers 403 instead.
def _require_bucket(s3: Any, bucket: str, account: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=account)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchBucket", "NotFound"):
            raise UserError(
                f"artifact bucket {bucket} does not exist in account {account}: "
                "`build.py deploy` creates it (the artifacts stacks) before uploading"
            ) from exc
        raise


def _exists(s3: Any, bucket: str, key: str, owner: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key, ExpectedBucketOwner=owner)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True
