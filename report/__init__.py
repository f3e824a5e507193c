"""``build.py report``: the fleet as the security account's central table shows it."""
