"""Signalite: a self-hosted, AWS-compatible Kinesis Video Streams WebRTC signaling server."""

__version__ = "0.1.0"
