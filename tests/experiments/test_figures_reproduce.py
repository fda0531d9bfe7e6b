"""Every figure in docs/figures that the study scripts draw is what they draw from the committed
records today: a figure left behind by new records, or drawn from records not committed, fails."""

from __future__ import annotations

import sys

import matplotlib
import pytest
from helpers import REPO, experiment_script
from PIL import Image

COMMITTED = REPO / "docs" / "figures"


def test_the_committed_figures_are_drawn_again_from_the_committed_records(tmp_path, monkeypatch):
    study, depth = experiment_script("cpu_study_figures"), experiment_script("depth_figures")
    for script in (study, depth):
        monkeypatch.setattr(script, "FIGURES", tmp_path)
    monkeypatch.setattr(sys, "argv", ["cpu_study_figures.py"])
    study.main()
    depth.main(REPO / "experiments" / "results" / "cpu_study" / "cpu_study_depth")
    drawn = sorted(tmp_path.glob("*.png"))
    assert len(drawn) >= 7  # six of the study's, the depth protocol's; the depth figure once it has pairs
    for figure in drawn:
        committed = COMMITTED / figure.name
        assert committed.is_file(), f"{figure.name} is drawn but not committed: run `make figures`"
        software = Image.open(committed).info.get("Software", "")
        if f"version{matplotlib.__version__}," not in software:
            pytest.skip(f"{committed.name} was drawn by {software!r}, this is matplotlib {matplotlib.__version__}")
        assert figure.read_bytes() == committed.read_bytes(), f"{figure.name} is out of date: run `make figures`"
