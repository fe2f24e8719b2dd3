"""The interface contract of design.md, as a newcomer meets it: ``signalite serve`` with generated
credentials and certificates, ``eval "$(signalite env)"`` making boto3, the AWS CLI and JS SDK v3
work with no code change, graceful shutdown, and the TLS/endpoint flags."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.support.server import TLS_PORT, Server

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_", "NODE_EXTRA"))}
    env.update(extra)
    return env


def _start(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Server:
    """``signalite serve`` as a newcomer runs it: no test credentials, only what ``env`` holds
    (the helper picks the ports, see tests/support/server.py)."""
    return Server(data_dir=data_dir, args=list(args), env=env or {}, credentials=False).start()


def _stop(server: Server, sig: int = signal.SIGTERM) -> tuple[int | None, str]:
    """Stop it; its exit code and what it printed since it started."""
    return server.stop(sig), server.last_log()


def _env_exports(data_dir: Path) -> dict[str, str]:
    out = subprocess.run([str(BIN / "signalite"), "env", "--data-dir", str(data_dir)], env=_clean_env(),
                         capture_output=True, text=True, check=True).stdout
    shell = subprocess.run(["bash", "-c", 'eval "$1"; env', "_", out], env=_clean_env(),
                           capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in shell.splitlines() if line.startswith(("AWS_", "NODE_EXTRA")))


def test_generated_credentials_env_and_real_clients(tmp_path):
    data = tmp_path / "data"
    srv = _start(data)
    try:
        creds_file = data / "credentials.json"
        assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
        saved = json.loads(creds_file.read_text())
        assert len(saved["account_id"]) == 12 and saved["account_id"].isdigit()

        env = _env_exports(data)
        assert env["AWS_ENDPOINT_URL_KINESIS_VIDEO"] == srv.url
        assert env["AWS_ACCESS_KEY_ID"] == saved["access_key_id"]
        assert env["AWS_SECRET_ACCESS_KEY"] == saved["secret_access_key"]
        assert env["AWS_REGION"] and env["AWS_CA_BUNDLE"] == env["NODE_EXTRA_CA_CERTS"]
        assert Path(env["AWS_CA_BUNDLE"]).exists()
        client_env = _clean_env(**env)

        # boto3 with no endpoint, key or CA in code.
        code = ("import boto3; kv = boto3.client('kinesisvideo');"
                "print(kv.create_signaling_channel(ChannelName='from-boto3')['ChannelARN'])")
        arn = subprocess.run([sys.executable, "-c", code], env=client_env, capture_output=True, text=True,
                             check=True).stdout.strip()
        assert arn.startswith(f"arn:aws:kinesisvideo:{env['AWS_REGION']}:{saved['account_id']}:channel/from-boto3/")
        assert len(arn.rsplit("/", 1)[1]) == 13

        # The AWS CLI, likewise.
        cli = subprocess.run([str(BIN / "aws"), "kinesisvideo", "describe-signaling-channel", "--channel-name",
                              "from-boto3"], env=client_env, capture_output=True, text=True, check=True)
        assert json.loads(cli.stdout)["ChannelInfo"]["ChannelARN"] == arn

        # JS SDK v3 with an empty client config.
        js = ("import {KinesisVideoClient, ListSignalingChannelsCommand} from '@aws-sdk/client-kinesis-video';"
              "const r = await new KinesisVideoClient({}).send(new ListSignalingChannelsCommand({}));"
              "console.log(JSON.stringify(r.ChannelInfoList.map(c => c.ChannelName)));")
        node = subprocess.run(["node", "--input-type=module", "-e", js], cwd=REPO / "tests/node", env=client_env,
                              capture_output=True, text=True, timeout=60)
        assert node.returncode == 0, node.stderr
        assert json.loads(node.stdout.strip().splitlines()[-1]) == ["from-boto3"]

        with urllib.request.urlopen(f"{srv.http_url}/ready", timeout=5) as r:
            assert r.status == 200 and json.loads(r.read())["store"] == "ok"
    finally:
        code, out = _stop(srv)
    assert code == 0, out
    assert saved["secret_access_key"] in out  # printed once, on the start that generated it

    # A restart keeps the same key and state and does not print the secret again.
    srv.start()
    code, out = _stop(srv)
    assert code == 0 and saved["secret_access_key"] not in out
    assert json.loads(creds_file.read_text()) == saved


def test_sigint_is_a_graceful_shutdown(tmp_path):
    srv = _start(tmp_path / "d", env=dict(
        SIGNALITE_ACCESS_KEY_ID="AKIDCONTRACT", SIGNALITE_SECRET_ACCESS_KEY="s3cr3t", SIGNALITE_ACCOUNT_ID="123456789012"))
    code, out = _stop(srv, signal.SIGINT)
    assert code == 0, out
    assert "Traceback" not in out


def test_public_url_and_own_certificate(tmp_path, server):
    # Reuse the session server's generated CA and leaf as "our own" certificate for a second server.
    tls = Path(server.ca).parent
    env = dict(SIGNALITE_ACCESS_KEY_ID="AKIDCONTRACT", SIGNALITE_SECRET_ACCESS_KEY="s3cr3t",
               SIGNALITE_ACCOUNT_ID="123456789012", SIGNALITE_PUBLIC_URL=f"https://localhost:{TLS_PORT}")
    srv = _start(tmp_path / "d", "--tls-cert", str(tls / "server.pem"), "--tls-key", str(tls / "server.key"), env=env)
    port = srv.port
    try:
        import boto3

        kv = boto3.client("kinesisvideo", region_name="eu-west-1", endpoint_url=f"https://localhost:{port}",
                          verify=server.ca, aws_access_key_id="AKIDCONTRACT", aws_secret_access_key="s3cr3t")
        arn = kv.create_signaling_channel(ChannelName="pub")["ChannelARN"]
        assert arn.startswith("arn:aws:kinesisvideo:eu-west-1:123456789012:channel/pub/")
        eps = kv.get_signaling_channel_endpoint(
            ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "HTTPS"], "Role": "VIEWER"})
        assert {e["Protocol"]: e["ResourceEndpoint"] for e in eps["ResourceEndpointList"]} == {
            "WSS": f"wss://localhost:{port}", "HTTPS": f"https://localhost:{port}"}
        assert not (tmp_path / "d" / "tls" / "ca.pem").exists()  # no CA generated when a cert is given
    finally:
        code, out = _stop(srv)
    assert code == 0, out
