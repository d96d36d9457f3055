"""Coordination state behind small interfaces: Redis in production, in-process for development.

Nothing here is the only copy of anything durable: revocations live in the database and are
only *published* through the cache.
"""
