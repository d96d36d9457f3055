"""The worker process (``agentauth serve worker``): spend ledger, revocation outbox and
heartbeats, pruning and audit checkpoints. It sits above the registry's services, which it
runs on its own schedule, and below the command line and ``agentauth dev``."""
