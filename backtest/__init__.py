"""``build.py backtest``: replay measurement events through the detector's scoring module."""
