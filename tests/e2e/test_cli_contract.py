"""The interface contract of design.md, as a newcomer meets it: ``signalite serve`` with generated
credentials and certificates, ``eval "$(signalite env)"`` making boto3, the AWS CLI and JS SDK v3
work with no code change, graceful shutdown, the TLS/endpoint flags, ``--help`` and the way a
bad configuration is reported."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from signalite.config import OPTIONS
from tests.support.server import ACCESS_KEY, SECRET_KEY, TLS_PORT, Server, free_port
from tests.support.signaling import connect

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
        assert env["AWS_ENDPOINT_URL_IAM"] == env["AWS_ENDPOINT_URL_STS"] == srv.url
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
        code = ("import boto3; boto3.client('iam').create_user(UserName='from-env');"
                "print(boto3.client('sts').get_caller_identity()['Arn'])")
        caller = subprocess.run([sys.executable, "-c", code], env=client_env, capture_output=True, text=True,
                                check=True).stdout.strip()
        assert caller == f"arn:aws:iam::{saved['account_id']}:root"

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


def test_public_url_with_a_default_port_is_advertised_as_given_without_it(make_server):
    server = make_server("--public-url", "https://localhost:443/kvs/")
    kv = server.boto()
    arn = kv.create_signaling_channel(ChannelName="portless")["ChannelARN"]
    eps = kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "HTTPS"], "Role": "MASTER"})
    assert {e["Protocol"]: e["ResourceEndpoint"] for e in eps["ResourceEndpointList"]} == {
        "WSS": "wss://localhost/kvs", "HTTPS": "https://localhost/kvs"}
    assert json.loads((server.data_dir / "endpoint.json").read_text())["url"] == "https://localhost/kvs"
    keys = _clean_env(SIGNALITE_ACCESS_KEY_ID=ACCESS_KEY, SIGNALITE_SECRET_ACCESS_KEY=SECRET_KEY)
    for extra in ([], ["--public-url", "https://localhost:443/kvs"]):
        out = subprocess.run([sys.executable, "-m", "signalite", "env", "--data-dir", str(server.data_dir), *extra],
                             env=keys, capture_output=True, text=True, check=True).stdout
        assert "export AWS_ENDPOINT_URL_KINESIS_VIDEO=https://localhost/kvs\n" in out, out


async def test_the_wss_endpoint_answers_on_the_path_of_the_public_url(make_server):
    server = make_server("--public-url", "https://localhost:443/kvs")
    arn = server.boto().create_signaling_channel(ChannelName="on-the-path")["ChannelARN"]
    master = await connect(server, arn, base=f"{server.url}/kvs")
    viewer = await connect(server, arn, "v", base=f"{server.url}/kvs")
    await viewer.send("SDP_OFFER", "b2ZmZXI=")
    assert (await master.recv())["messagePayload"] == "b2ZmZXI="
    for peer in (master, viewer):
        await peer.close()


def test_serve_help_lists_every_option_with_its_variable_and_default():
    out = subprocess.run([sys.executable, "-m", "signalite", "serve", "--help"], env=_clean_env(),
                         capture_output=True, text=True, check=True).stdout
    text = " ".join(out.split())
    for option in OPTIONS:
        assert option.env in text and (option.flag is None or f"{option.flag} " in text), option
    assert text.count("(default: ") == len(OPTIONS)
    assert "--go-away-frames, --no-go-away-frames" in text and "--tls-san NAME[,NAME...]" in text


@pytest.mark.parametrize("env, args, message", [
    ({"SIGNALITE_PORT": "abc"}, [], "signalite: SIGNALITE_PORT: 'abc' is not an integer"),
    ({"SIGNALITE_ACCOUNT_ID": "123"}, [], "signalite: SIGNALITE_ACCOUNT_ID: must be exactly 12 digits"),
    ({"SIGNALITE_PUBLIC_URL": "kvs.example"}, [], "signalite: SIGNALITE_PUBLIC_URL: 'kvs.example' is not an https://"),
    ({"SIGNALITE_GO_AWAY_FRAMES": "sometimes"}, [], "SIGNALITE_GO_AWAY_FRAMES: 'sometimes' is not a boolean"),
    ({}, ["--tls-cert", "cert.pem"], "signalite: --tls-cert and --tls-key go together"),
])
def test_a_bad_configuration_is_one_line_on_stderr_and_exit_1(tmp_path, env, args, message):
    port = [] if "SIGNALITE_PORT" in env else ["--port", str(free_port())]  # a flag would win over the variable
    proc = subprocess.run([sys.executable, "-m", "signalite", "serve", "--data-dir", str(tmp_path), *port, *args],
                          env=_clean_env(**env), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_port_in_use_is_reported_without_a_traceback(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = subprocess.run([sys.executable, "-m", "signalite", "serve", "--data-dir", str(tmp_path), "--port",
                               str(taken.getsockname()[1])], env=_clean_env(), capture_output=True, text=True,
                              timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "signalite: cannot listen on TCP 127.0.0.1:" in proc.stderr and "Traceback" not in proc.stderr


def test_admin_without_a_server_or_key_says_why(tmp_path):
    admin = [sys.executable, "-m", "signalite", "admin", "go-away", "--channel-arn",
             "arn:aws:kinesisvideo:us-west-2:111122223333:channel/none/1700000000000"]
    no_url = subprocess.run([*admin, "--data-dir", str(tmp_path)], env=_clean_env(), capture_output=True, text=True,
                            timeout=60)
    assert no_url.returncode == 1 and "no server URL" in no_url.stderr and "Traceback" not in no_url.stderr
    no_key = subprocess.run([*admin, "--data-dir", str(tmp_path), "--url", "https://127.0.0.1"], env=_clean_env(),
                            capture_output=True, text=True, timeout=60)
    assert no_key.returncode == 1 and "no root key" in no_key.stderr and "Traceback" not in no_key.stderr
    unreachable = subprocess.run(
        [*admin, "--url", f"https://127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60,
        env=_clean_env(SIGNALITE_DATA_DIR=str(tmp_path), SIGNALITE_ACCESS_KEY_ID="AKID",
                       SIGNALITE_SECRET_ACCESS_KEY="s"))
    assert unreachable.returncode == 1 and "cannot reach" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
