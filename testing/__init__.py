"""The test kit shared by ``tests/`` and ``demo/``: moto made faithful, fakes of AWS APIs
moto lacks (speaking their real wire format), and a moto organization built from a config.

Product packages (``generator``, ``rollout``, ``lambda``) never import it.
"""
