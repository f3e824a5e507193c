"""Suite-wide guard: no test may reach a real AWS account.

Fake credentials and a fixed region are set before any test module creates a client, and
profile/config files are pointed away from the developer's own, so a test that forgets
moto fails against a dead endpoint instead of touching a real organization.
"""

import os

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}

os.environ.update(_FAKE_ENV)
os.environ.pop("AWS_PROFILE", None)


# -- markers: `-m unit` is the fast feedback loop, `-m aws` the moto/server/linter tests ------

import pytest  # noqa: E402 - after the environment guard above, on purpose

# Fixtures that stand up moto, a loopback fake or a whole simulated organization.
AWS_FIXTURES = frozenset(
    {"world", "fake_ebs", "raw_clients", "handler_env", "aws", "fake", "client", "recorder"}
)
# Modules whose tests run external validators or synthesize into moto.
AWS_MODULES = frozenset({"test_lint", "test_templates_moto", "test_benchmark_smoke"})


def pytest_collection_modifyitems(items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        heavy = (
            item.get_closest_marker("slow") is not None
            or AWS_FIXTURES & set(item.fixturenames)
            or module in AWS_MODULES
            or "rollout" in item.nodeid.split("/")[:2]
        )
        item.add_marker(pytest.mark.aws if heavy else pytest.mark.unit)
