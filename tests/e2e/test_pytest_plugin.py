"""The pytest plugin and ``signalite.testing.SignaliteServer``, used as a user would: from a
separate project that only has ``pip install signalite``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from signalite.testing import SignaliteServer
from tests.support.netns import needs_netns, run_in_netns

ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, **files: str) -> Path:
    project = tmp_path / "user-project"
    project.mkdir()
    for name, text in files.items():
        (project / name).write_text(textwrap.dedent(text))
    return project


def _pytest(project: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_", "PYTEST_"))}
    # the user's project, not ours: our conftest, rootdir and PYTHONPATH stay out
    env.pop("PYTHONPATH", None)
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(project), *args], env


def test_the_package_registers_the_plugin():
    from importlib.metadata import entry_points

    assert [e.value for e in entry_points(group="pytest11") if e.name == "signalite"] == ["signalite.pytest_plugin"]


def test_the_plugin_from_a_separate_project(tmp_path):
    project = _project(tmp_path, **{"test_user.py": """
        import os

        import boto3


        def test_env_points_boto3_at_signalite(signalite_env):
            assert os.environ["AWS_ENDPOINT_URL_KINESIS_VIDEO"] == signalite_env.endpoint_url
            kv = boto3.client("kinesisvideo")  # nothing in code: the environment is Signalite's
            arn = kv.create_signaling_channel(ChannelName="from-the-plugin")["ChannelARN"]
            assert f":{signalite_env.account_id}:channel/from-the-plugin/" in arn
            assert kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["ChannelStatus"] == "ACTIVE"


        def test_the_server_is_shared_by_the_session(signalite_server):
            kv = signalite_server.client()
            names = [c["ChannelName"] for c in kv.list_signaling_channels()["ChannelInfoList"]]
            assert names == ["from-the-plugin"]
            assert signalite_server.env["AWS_CA_BUNDLE"] == signalite_server.ca_bundle
            assert signalite_server.region == "us-west-2" and len(signalite_server.account_id) == 12
    """})
    argv, env = _pytest(project, str(project))
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_signalite_server_context_manager_leaves_nothing_behind():
    with SignaliteServer(quotas="relaxed") as server:
        pid, data_dir = server.proc.pid, server.data_dir
        kv = server.client()
        kv.create_signaling_channel(ChannelName="ctx")
        assert server.endpoint_url.startswith("https://127.0.0.1:") and not server.endpoint_url.endswith(":0")
    assert not data_dir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_server_dies_with_the_process_that_started_it(tmp_path):
    """A test run killed with SIGKILL (no teardown) still leaves no server behind."""
    script = tmp_path / "starter.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from signalite.testing import SignaliteServer
        server = SignaliteServer({str(tmp_path / 'd')!r}).start()
        print(server.proc.pid, flush=True)
        os.kill(os.getpid(), 9)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    pid = int(done.stdout.split()[0])
    for _ in range(200):  # the kernel signals the orphan; it drains (nothing connected) and exits
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        subprocess.run(["sleep", "0.05"])
    else:
        os.kill(pid, 9)
        pytest.fail("the server outlived the process that started it")


@needs_netns
@pytest.mark.netns
def test_the_readme_example_runs_with_the_plugin_inside_a_loopback_namespace(tmp_path):
    project = tmp_path / "user-project"
    project.mkdir()
    shutil.copy(ROOT / "examples" / "test_kvs_app.py", project / "test_kvs_app.py")
    argv, env = _pytest(project, str(project / "test_kvs_app.py"))
    result = run_in_netns(argv, cwd=project, env=env, timeout=180)
    assert result.ok and "1 passed" in result.output, result
