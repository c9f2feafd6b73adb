import subprocess
import sys


def test_python_m_image_repo_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "image_repo", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("serve", "openapi"):
        assert command in result.stdout


def test_serve_has_host_and_port_options(runner):
    result = runner.invoke(args=["serve", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output
