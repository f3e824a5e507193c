"""The embedded demo: the whole flow on a simulated organization (moto, in-process)."""
