"""Peer programs (Chromium, aiortc) run inside a lo-only network namespace by the e2e tests."""
