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
