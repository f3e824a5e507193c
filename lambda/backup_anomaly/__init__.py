"""Backup anomaly detector: measures the blocks changed between consecutive EBS backups.

Modules, one job each: ``settings`` (environment contract), ``events`` (event views and the
act-or-skip decision), ``snapshots`` (backup job -> one snapshot per volume), ``state``
(DynamoDB, conditional writes), ``changed_blocks`` (ListChangedBlocks counting),
``metrics``, ``alarms``, ``forward`` (central bus), ``logs`` (structured outcome lines),
``detector`` (the exactly-once flow) and ``handler`` (the Lambda entry point).
"""
