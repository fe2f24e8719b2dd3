"""Integration tests: the store and bus contracts against every backend, on real databases."""
