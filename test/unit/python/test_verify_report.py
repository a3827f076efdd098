"""make kitchen's last words (test/integration/verify_report.py): each failed
test of each instance's verify, with why, from the JUnit files the verifier
writes (kitchen.yml)."""
import subprocess
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "integration" / "verify_report.py"


def test_it_names_the_instance_the_failed_test_and_why(tmp_path):
    (tmp_path / "test_x.py").write_text(
        'def test_ok():\n    pass\n\n\ndef test_bad():\n    assert 1 == 2, "the reason"\n')
    junit = tmp_path / "verify" / "default-debian-12.xml"
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path / "test_x.py"), f"--junitxml={junit}"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1, run.stdout
    out = subprocess.run([sys.executable, str(REPORT), str(junit.parent)],
                         capture_output=True, text=True, check=True).stdout
    assert "--- default-debian-12: test_x::test_bad" in out
    assert "AssertionError: the reason" in out
    assert "test_ok" not in out
