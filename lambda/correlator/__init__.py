"""The central correlator: turns per-volume events from every member into incidents.

Deployed in the security account on its own (stdlib + boto3 only), fed from the central
event bus through an SQS queue, and run on a schedule for the silence check and the
incident sweep. Entry point: ``correlator.handler.lambda_handler``.
"""

__version__ = "0.1.0"
