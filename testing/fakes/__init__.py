"""Loopback fakes of AWS APIs that moto does not implement (real wire format)."""
