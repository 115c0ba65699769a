"""Readers for traffic captured by other tools, so their recordings can become cassettes."""
