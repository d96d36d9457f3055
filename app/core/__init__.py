"""Pure protocol logic shared by the registry and the verifier.

Nothing in this package performs I/O or reads the clock on its own: every time-dependent
function takes ``now`` (integer seconds since the epoch) from its caller.
"""
