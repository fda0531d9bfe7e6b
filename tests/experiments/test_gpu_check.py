"""experiments/gpu_check.sh, the script for the first GPU we get, runs end to end on the CPU with
tiny settings (--dry-run) and writes every section of its report."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import REPO


@pytest.mark.timeout(900)
def test_the_gpu_check_dry_run_writes_its_report(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path)}
    result = subprocess.run(
        ["bash", "experiments/gpu_check.sh", "--dry-run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = (tmp_path / "gpu_check.md").read_text()
    for defense in ("pgd", "lad", "lad_sm"):
        assert f"| {defense} | cpu |" in report
    assert "LAD/base ratio (eager): lad/pgd" in report
    assert "## AutoAttack (standard)" in report and "images/s" in report
    assert "## DDP: skipped" in report
