"""Calling rails: the client that performs adapter operations (the I/O)."""
