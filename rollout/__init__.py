"""Rollout: package, plan, deploy, drift and onboarding with CloudFormation StackSets.

One module per job:

- ``commands``: the CLI entry points ``build.py`` routes to.
- ``sessions``: boto3 sessions and clients per account (assumed role, standard retries).
- ``organization``: reads OUs and accounts from AWS Organizations.
- ``desired``: what the config asks for (stacks, the StackSet, instances per account/region).
- ``artifacts``: builds and uploads the Lambda zip and templates (content-addressed).
- ``plan``: reads what is deployed, compares, renders ``+ ~ -`` with counts.
- ``operations``: groups instance changes into as few StackSet operations as possible.
- ``stacks`` / ``stackset_ops``: apply a stack / run a StackSet operation, and wait.
- ``deploy``: the order of it all, and the final check of every instance.
- ``drift``, ``cost``, ``onboarding`` (import-accounts), ``display`` (console output).
- ``demo``: the whole flow on a simulated organization (moto, in-process).
"""
