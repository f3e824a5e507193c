"""One module per CloudFormation template; each has a pure ``build(config, ...) -> Template``.

``central`` (security account), ``member`` (the StackSet body), ``stackset`` (the StackSet
as a resource, admin account), ``artifacts`` (per-region code bucket, admin account),
``stackset_roles`` (SELF_MANAGED administration and execution roles); ``common`` holds
what they share (tags, KMS keys, TLS guards, checkov skips).
"""
