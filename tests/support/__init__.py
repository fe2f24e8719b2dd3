"""Test support: the real server process and clients pointed at it."""
