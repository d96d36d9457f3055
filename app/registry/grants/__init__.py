"""One module per grant type: its ``GRANT_TYPE`` and a ``handle`` coroutine."""
