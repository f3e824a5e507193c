"""AWS sessions and clients for the accounts the rollout touches.

The caller's credentials come from the standard boto3 chain (or ``--profile``); the
security and StackSet admin accounts are reached by assuming ``--role-name`` in them when
they are not the caller's own account. Every client uses botocore's standard retry mode,
so throttling and transient errors are retried by botocore, not by hand-written loops.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from generator.errors import UserError

# botocore's standard retry mode with 10 attempts, unless the user's own settings say
# otherwise (AWS_MAX_ATTEMPTS / AWS_RETRY_MODE or the profile's max_attempts / retry_mode):
# an explicit client Config would override those. Short connect timeouts, so an
# unreachable endpoint fails in seconds, not after minutes of silent retries.
DEFAULT_MAX_ATTEMPTS = 10
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 60


def client_config(session: boto3.Session) -> Config:
    """The client configuration for ``session``, honouring the user's retry settings."""
    core = session._session  # botocore's session: it resolves env vars and the profile
    retries: dict[str, Any] = {"mode": core.get_config_variable("retry_mode") or "standard"}
    if core.get_config_variable("max_attempts") is None:
        retries["max_attempts"] = DEFAULT_MAX_ATTEMPTS
    return Config(
        retries=retries,
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
    )


# (botocore event name, handler): registered on every client, e.g. to count API calls.
Observer = tuple[str, Callable[..., Any]]


@dataclass
class AwsSessions:
    """Clients per (account, service, region), assuming a role where needed.

    Args:
        base: the caller's session (standard chain or a profile).
        role_name: role assumed in accounts other than the caller's.
        endpoint_url: one endpoint for every service (a local emulator), or None.
        observers: botocore event handlers registered on every client created.
    """

    base: boto3.Session
    role_name: str = "OrganizationAccountAccessRole"
    endpoint_url: str | None = None
    observers: Sequence[Observer] = ()
    _sessions: dict[str, boto3.Session] = field(default_factory=dict, repr=False)
    _clients: dict[tuple[str, str, str], Any] = field(default_factory=dict, repr=False)
    _caller: str | None = field(default=None, repr=False)
    _partition: str = field(default="aws", repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> AwsSessions:
        """Builds the sessions from the CLI's ``--profile``, ``--role-name``, ``--endpoint-url``."""
        try:
            base = boto3.Session(profile_name=getattr(args, "profile", None))
        except BotoCoreError as exc:  # e.g. ProfileNotFound
            raise UserError(str(exc)) from exc
        return cls(
            base=base,
            role_name=getattr(args, "role_name", None) or "OrganizationAccountAccessRole",
            endpoint_url=getattr(args, "endpoint_url", None),
        )

    @property
    def caller_account(self) -> str:
        """The account of the caller's credentials."""
        if self._caller is None:
            sts = self._new_client(self.base, "sts", self.base.region_name or "us-east-1")
            try:
                identity = sts.get_caller_identity()
                self._caller = identity["Account"]
                # The caller's partition is the one its roles live in (aws-us-gov, aws-cn).
                self._partition = identity.get("Arn", "arn:aws:").split(":")[1] or "aws"
            except NoCredentialsError as exc:
                raise UserError(
                    "no AWS credentials found: configure the standard chain or pass --profile"
                ) from exc
        return self._caller

    def session(self, account_id: str) -> boto3.Session:
        """A session acting in ``account_id`` (the caller's own, or an assumed role)."""
        if account_id == self.caller_account:
            return self.base
        if account_id not in self._sessions:
            sts = self.client("sts", self.caller_account, self.base.region_name or "us-east-1")
            arn = f"arn:{self._partition}:iam::{account_id}:role/{self.role_name}"
            try:
                creds = sts.assume_role(RoleArn=arn, RoleSessionName="backup-anomaly-rollout")[
                    "Credentials"
                ]
            except ClientError as exc:
                raise UserError(
                    f"cannot assume {arn} from account {self.caller_account}: "
                    f"{exc.response['Error'].get('Message', exc)} (see --role-name)"
                ) from exc
            self._sessions[account_id] = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=self.base.region_name,
            )
        return self._sessions[account_id]

    def client(self, service: str, account_id: str, region: str) -> Any:
        """A cached client for ``service`` in ``account_id`` and ``region``."""
        key = (account_id, service, region)
        if key not in self._clients:
            self._clients[key] = self._new_client(self.session(account_id), service, region)
        return self._clients[key]

    def _new_client(self, session: boto3.Session, service: str, region: str) -> Any:
        client = session.client(
            service,
            region_name=region,
            endpoint_url=self.endpoint_url,
            config=client_config(self.base),
        )
        for event, handler in self.observers:
            client.meta.events.register(event, handler)
        return client
