"""The registry process: the only writer of the database."""
