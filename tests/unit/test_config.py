"""The configuration table without a server: one declaration per option, flag over environment
over default, quota profiles with per-limit overrides, value parsing and port-less URLs."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from signalite.config import (
    OPTIONS,
    ConfigError,
    Quotas,
    Settings,
    add_serve_arguments,
    settings_from,
    without_default_port,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="signalite serve")
    add_serve_arguments(p)
    return p


def settings(*flags: str, **env: str) -> Settings:
    return settings_from(parser().parse_args(list(flags)), {f"SIGNALITE_{k}": v for k, v in env.items()})


# Every flag and variable that existed before the table (scripts and deployments use them).
LEGACY = {
    "--host": "SIGNALITE_HOST", "--port": "SIGNALITE_PORT", "--http-port": "SIGNALITE_HTTP_PORT",
    "--data-dir": "SIGNALITE_DATA_DIR", "--public-url": "SIGNALITE_PUBLIC_URL", "--tls-cert": "SIGNALITE_TLS_CERT",
    "--tls-key": "SIGNALITE_TLS_KEY", "--store": "SIGNALITE_STORE", "--bus": "SIGNALITE_BUS",
    "--quotas": "SIGNALITE_QUOTAS", "--max-viewers": "SIGNALITE_MAX_VIEWERS",
    "--connects-per-second": "SIGNALITE_CONNECTS_PER_SECOND", "--sdp-rate": "SIGNALITE_SDP_RATE",
    "--ice-rate": "SIGNALITE_ICE_RATE", "--max-payload": "SIGNALITE_MAX_PAYLOAD",
    "--idle-timeout": "SIGNALITE_IDLE_TIMEOUT", "--max-connection-seconds": "SIGNALITE_MAX_CONNECTION_SECONDS",
    "--go-away-grace": "SIGNALITE_GO_AWAY_GRACE", "--channels-per-account": "SIGNALITE_CHANNELS_PER_ACCOUNT",
    "--turn-uri": "SIGNALITE_TURN_URIS", "--turn-secret": "SIGNALITE_TURN_SECRET", "--turn-ttl": "SIGNALITE_TURN_TTL",
    "--turn": "SIGNALITE_TURN", "--turn-port": "SIGNALITE_TURN_PORT", "--turnserver": "SIGNALITE_TURNSERVER",
    "--stun-port": "SIGNALITE_STUN_PORT", "--log-level": "SIGNALITE_LOG_LEVEL",
    # new in issue 8
    "--go-away-frames": "SIGNALITE_GO_AWAY_FRAMES", "--tls-san": "SIGNALITE_TLS_SAN",
    "--drain-timeout": "SIGNALITE_DRAIN_TIMEOUT", "--node-id": "SIGNALITE_NODE_ID",
    "--metrics": "SIGNALITE_METRICS", "--metrics-token": "SIGNALITE_METRICS_TOKEN",
    "--log-format": "SIGNALITE_LOG_FORMAT", "--log-payloads": "SIGNALITE_LOG_PAYLOADS",
    # new in issue 11
    "--backlog": "SIGNALITE_BACKLOG", "--header-timeout": "SIGNALITE_HEADER_TIMEOUT",
    "--body-timeout": "SIGNALITE_BODY_TIMEOUT", "--body-min-rate": "SIGNALITE_BODY_MIN_RATE",
    "--tls-handshake-timeout": "SIGNALITE_TLS_HANDSHAKE_TIMEOUT",
    "--max-unauthenticated-per-ip": "SIGNALITE_MAX_UNAUTHENTICATED_PER_IP",
    "--handshakes-per-ip": "SIGNALITE_HANDSHAKES_PER_IP",
    # new in issue 9
    "--identity-cache-seconds": "SIGNALITE_IDENTITY_CACHE_SECONDS",
}
ENV_ONLY = {"SIGNALITE_ACCESS_KEY_ID", "SIGNALITE_SECRET_ACCESS_KEY", "SIGNALITE_ACCOUNT_ID", "SIGNALITE_SERVER_KEY"}


def test_the_table_keeps_every_flag_and_variable_and_declares_each_once():
    assert {o.flag: o.env for o in OPTIONS if o.flag} == LEGACY
    assert {o.env for o in OPTIONS if o.flag is None} == ENV_ONLY
    assert len({o.env for o in OPTIONS}) == len(OPTIONS)
    # Each option's default is its field's default: nothing restated elsewhere.
    assert Settings() == settings()
    assert Settings().quotas == Quotas() == Quotas.profile("aws")


def test_help_lists_every_flag_with_its_variable_and_default():
    text = " ".join(parser().format_help().split())
    for o in OPTIONS:
        assert o.env in text
        if o.flag:
            assert f"{o.flag}" in text
    assert "(default: 8443; env SIGNALITE_PORT)" in text
    assert "(default: 10, relaxed: 100000; env SIGNALITE_MAX_VIEWERS)" in text
    assert "(default: off; env SIGNALITE_GO_AWAY_FRAMES)" in text
    assert "(default: 30; env SIGNALITE_DRAIN_TIMEOUT)" in text


def test_flag_wins_over_environment_which_wins_over_default():
    assert settings().port == 8443
    assert settings(PORT="9000").port == 9000
    assert settings("--port", "9100", PORT="9000").port == 9100
    assert settings(PORT="").port == 8443  # an empty variable counts as unset
    assert settings("--data-dir", "/x", DATA_DIR="/y").data_dir == Path("/x")
    assert settings(DATA_DIR="/y").data_dir == Path("/y")


def test_quota_profile_with_overrides_from_flags_and_environment():
    s = settings("--quotas", "relaxed", "--max-viewers", "50", "--sdp-rate", "2", ICE_RATE="7", MAX_PAYLOAD="2048")
    q = s.quotas
    assert s.quotas_profile == "relaxed"
    assert (q.max_viewers_per_channel, q.sdp_messages_per_second, q.ice_messages_per_second, q.max_payload_bytes) == (
        50, 2, 7, 2048)
    assert q.connects_per_second_per_channel is None and q.idle_timeout_seconds is None  # from the profile
    aws = settings(QUOTAS="AWS", IDLE_TIMEOUT="1.5").quotas
    assert aws.idle_timeout_seconds == 1.5 and aws.max_viewers_per_channel == 10
    assert settings("--quotas", "aws", QUOTAS="relaxed").quotas_profile == "aws"
    with pytest.raises(ValueError):
        Quotas.profile("generous")
    with pytest.raises(ConfigError, match="SIGNALITE_QUOTAS"):
        settings(QUOTAS="generous")
    with pytest.raises(SystemExit):  # argparse: invalid choice
        parser().parse_args(["--quotas", "generous"])


def test_zero_means_no_limit_for_rates_and_durations_even_over_the_aws_profile():
    q = settings("--sdp-rate", "0", "--idle-timeout", "0", CONNECTS_PER_SECOND="0", MAX_CONNECTION_SECONDS="0").quotas
    assert q.sdp_messages_per_second is None and q.idle_timeout_seconds is None
    assert q.connects_per_second_per_channel is None and q.max_connection_seconds is None
    assert q.ice_messages_per_second == 20  # untouched
    with pytest.raises(ConfigError, match="SIGNALITE_ICE_RATE: -1 is negative"):
        settings(ICE_RATE="-1")


@pytest.mark.parametrize("raw, value", [("1", True), ("true", True), ("YES", True), ("on", True),
                                        ("0", False), ("false", False), ("no", False), ("off", False)])
def test_booleans_from_the_environment(raw, value):
    assert settings(GO_AWAY_FRAMES=raw).go_away_frames is value
    assert settings(TURN=raw).run_turn is value


def test_boolean_flags_override_the_environment_both_ways():
    assert settings("--go-away-frames").go_away_frames is True
    assert settings("--no-go-away-frames", GO_AWAY_FRAMES="1").go_away_frames is False
    assert settings("--turn", TURN="0").run_turn is True
    assert settings().go_away_frames is False and settings().run_turn is False
    with pytest.raises(ConfigError, match="SIGNALITE_GO_AWAY_FRAMES: 'maybe' is not a boolean"):
        settings(GO_AWAY_FRAMES="maybe")


def test_floats_ints_and_bad_values():
    assert settings("--drain-timeout", "2.5").drain_timeout == 2.5
    assert settings(DRAIN_TIMEOUT="45").drain_timeout == 45.0
    assert settings().drain_timeout == 30.0
    assert settings(TURN_TTL="600").turn_ttl == 600
    with pytest.raises(ConfigError, match="SIGNALITE_PORT: 'abc' is not an integer"):
        settings(PORT="abc")
    with pytest.raises(ConfigError, match="SIGNALITE_DRAIN_TIMEOUT: 'soon' is not a number"):
        settings(DRAIN_TIMEOUT="soon")
    with pytest.raises(ConfigError, match="70000 is not a port"):
        settings(HTTP_PORT="70000")
    with pytest.raises(SystemExit):  # argparse reports a bad flag value itself (exit 2)
        parser().parse_args(["--port", "abc"])


def test_comma_lists():
    assert settings("--turn-uri", "turn:a:1, turn:b:2,,").turn_uris == ("turn:a:1", "turn:b:2")
    assert settings(TURN_URIS="turn:c:3").turn_uris == ("turn:c:3",)
    assert settings("--tls-san", "kinesisvideo.us-west-2.amazonaws.com,10.0.0.7, ::2").tls_san == (
        "kinesisvideo.us-west-2.amazonaws.com", "10.0.0.7", "::2")
    assert settings(TLS_SAN="*.example.com").tls_san == ("*.example.com",)
    assert settings().tls_san == () and settings().turn_uris == ()
    with pytest.raises(ConfigError, match="'bad name' is neither a DNS name nor an IP address"):
        settings(TLS_SAN="ok.example,bad name")


def test_root_key_and_account_come_from_the_environment_only():
    s = settings(ACCESS_KEY_ID="AKIDX", SECRET_ACCESS_KEY="secret", ACCOUNT_ID="123456789012")
    assert (s.access_key_id, s.secret_access_key, s.account_id) == ("AKIDX", "secret", "123456789012")
    assert "secret" not in repr(s)
    with pytest.raises(ConfigError, match="SIGNALITE_ACCOUNT_ID: must be exactly 12 digits"):
        settings(ACCOUNT_ID="12345")
    with pytest.raises(SystemExit):
        parser().parse_args(["--access-key-id", "AKIDX"])


def test_node_id_defaults_to_host_and_port():
    assert settings("--host", "10.0.0.5", "--port", "9443").node_id == "10.0.0.5:9443"
    assert settings("--node-id", "edge-1").node_id == "edge-1"
    assert settings(NODE_ID="edge-2").node_id == "edge-2"
    assert not settings("--host", "0.0.0.0").node_id.startswith("0.0.0.0")


@pytest.mark.parametrize("url, expected", [
    ("https://x.example:443/p", "https://x.example/p"),
    ("https://x.example:443/", "https://x.example"),
    ("https://x.example:8443", "https://x.example:8443"),
    ("http://x.example:80", "http://x.example"),
    ("http://x.example:443", "http://x.example:443"),
    ("wss://[::1]:443", "wss://[::1]"),
    ("HTTPS://X.example:443/Path", "https://X.example/Path"),
    ("https://x.example", "https://x.example"),
])
def test_without_default_port(url, expected):
    assert without_default_port(url) == expected


@pytest.mark.parametrize("flags, url, host", [
    ((), "https://127.0.0.1:8443", "127.0.0.1"),
    (("--port", "443"), "https://127.0.0.1", "127.0.0.1"),
    (("--host", "0.0.0.0", "--port", "443"), "https://127.0.0.1", "127.0.0.1"),
    (("--host", "::1", "--port", "443"), "https://[::1]", "::1"),
    (("--host", "::1", "--port", "9443"), "https://[::1]:9443", "::1"),
    (("--public-url", "https://kvs.example:443/signal/"), "https://kvs.example/signal", "kvs.example"),
    (("--public-url", "https://kvs.example:8443", "--port", "443"), "https://kvs.example:8443", "kvs.example"),
    (("--public-url", "http://kvs.example:80"), "http://kvs.example", "kvs.example"),
])
def test_advertised_url_never_carries_a_default_port(flags, url, host):
    s = settings(*flags)
    assert (s.advertised_url, s.advertised_host) == (url, host)


def test_public_url_must_be_a_base_url():
    for bad in ("kvs.example", "ftp://kvs.example", "https://kvs.example:99999", "https://kvs.example/?a=1"):
        with pytest.raises(ConfigError, match="SIGNALITE_PUBLIC_URL"):
            settings(PUBLIC_URL=bad)


def test_a_plain_settings_object_needs_no_environment():
    s = Settings(port=443, quotas=Quotas.profile("relaxed", max_viewers_per_channel=3), go_away_frames=True)
    assert s.advertised_url == "https://127.0.0.1" and s.quotas.max_viewers_per_channel == 3
    assert dataclasses.replace(s, tls_san=("a.example",)).tls_san == ("a.example",)


def test_timeouts_backlog_and_per_address_limits():
    s = settings()
    assert (s.backlog, s.header_timeout, s.body_timeout, s.body_min_rate, s.tls_handshake_timeout) == (
        4096, 20, 10, 1024, 10)
    assert (s.quotas.max_unauthenticated_per_ip, s.quotas.handshakes_per_ip_per_second) == (256, 50)
    relaxed = settings("--quotas", "relaxed")
    assert relaxed.quotas.max_unauthenticated_per_ip is None and relaxed.quotas.handshakes_per_ip_per_second is None
    assert relaxed.header_timeout == 20  # timeouts protect the server in every profile
    given = settings("--backlog", "128", "--header-timeout", "1.5", "--body-min-rate", "0",
                     "--max-unauthenticated-per-ip", "0", HANDSHAKES_PER_IP="7")
    assert (given.backlog, given.header_timeout, given.body_min_rate) == (128, 1.5, None)
    assert (given.quotas.max_unauthenticated_per_ip, given.quotas.handshakes_per_ip_per_second) == (None, 7)
    for flags in (["--backlog", "0"], ["--header-timeout", "0"], ["--tls-handshake-timeout", "-1"]):
        with pytest.raises(SystemExit):
            settings(*flags)
    with pytest.raises(ConfigError):
        settings(HEADER_TIMEOUT="0")
