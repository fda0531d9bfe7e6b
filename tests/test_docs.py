"""The README and docs/ as a newcomer uses them: the README stays short, every relative link lands
on a file (and heading), every path and make target they name exists, and every command they show
still runs. A training or evaluation line is composed into the config it would run with and its
run is built (every constructor's check), not trained; `ladlit.report` runs on a folder of runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from helpers import REPO, compose_config, run_cli, write_run
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from ladlit.config import build, check_renamed_overrides, check_sweep_keys
from ladlit.train import build_run

README = REPO / "README.md"
PAGES = (README, *sorted((REPO / "docs").glob("*.md")))
README_LINES = 80  # the top a newcomer reads in two minutes; the rest belongs in docs/

BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")
REPO_PATH = re.compile(r"(src|conf|docs|experiments|tests|\.ci)/[\w./-]*")
PLACEHOLDER = re.compile(r"<([^<>]*)>")
SWEPT_ELSEWHERE = "hydra.sweeper.params."  # an optimising sweeper's search space: keys of the job's config


def command_lines() -> list[tuple[str, tuple[str, ...]]]:
    """(page, argv) of every command in every ```bash block of the pages, comments dropped."""
    found = []
    for page in PAGES:
        for block in BLOCK.findall(page.read_text()):
            for line in block.splitlines():
                argv = tuple(shlex.split(line, comments=True))
                if argv:
                    found.append((page.relative_to(REPO).as_posix(), argv))
    return found


def ladlit_commands(tool: str) -> list[tuple[str, ...]]:
    """The distinct arguments of every `python -m ladlit.<tool> ...` line."""
    return list(
        dict.fromkeys(argv[3:] for _, argv in command_lines() if argv[:3] == ("python", "-m", f"ladlit.{tool}"))
    )


def filled(args: tuple[str, ...]) -> list[str]:
    """The arguments with each placeholder (`outputs/<run>`) replaced by a name of its own."""
    return [PLACEHOLDER.sub(lambda m: re.sub(r"\W+", "_", m.group(1)), a) for a in args]


def jobs(args: tuple[str, ...]) -> tuple[list[list[str]], list[str]]:
    """The override lists a command's jobs compose, the first job first (a multirun: every value of
    each swept key, the other keys at their first value), and the keys an optimising sweeper sets."""
    overrides = [a for a in filled(args) if a not in ("-m", "--multirun")]
    searched = [o.partition("=")[0].removeprefix(SWEPT_ELSEWHERE) for o in overrides if o.startswith(SWEPT_ELSEWHERE)]
    parsed = OverridesParser.create().parse_overrides([o for o in overrides if not o.startswith(SWEPT_ELSEWHERE)])
    values = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
        for o in parsed
    ]
    first = [v[0] for v in values]
    variants = [first] + [
        first[:i] + [option] + first[i + 1 :] for i, options in enumerate(values) for option in options
    ]
    return [list(v) for v in dict.fromkeys(map(tuple, variants))], searched


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors for a markdown page's headings."""
    headings = re.findall(r"^#+\s+(.*)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


# --- the README's top ---------------------------------------------------------------------------


def test_the_readme_is_short_and_leaves_the_rest_to_docs():
    lines = README.read_text().splitlines()
    assert len(lines) < README_LINES, f"README.md has {len(lines)} lines: move detail into a docs/ page"


def test_the_readme_opens_with_the_two_commands_ci_and_make_run():
    first = BLOCK.search(README.read_text()).group(1)
    assert re.search(r"^make train\b", first, re.M) and re.search(r"^make test\b", first, re.M)
    assert re.search(r"^make test$", (REPO / ".ci" / "run").read_text(), re.M), ".ci/run runs the README's test command"
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^VENV\s*:=\s*\.venv$", makefile, re.M)
    assert re.search(r"^train:.*\n\t\$\(PY\) -m ladlit\.train experiment=quickstart$", makefile, re.M)


def test_the_readme_links_every_docs_page():
    linked = {Path(target.partition("#")[0]).name for target in LINK.findall(README.read_text())}
    pages = {page.name for page in (REPO / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages the README's table of contents does not reach: {sorted(pages - linked)}"


# --- links, paths, targets ----------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_lands_on_a_file_and_its_heading(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not ours to check offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: link to {target} finds no file"
        if anchor and file.suffix == ".md":
            assert anchor in heading_anchors(file), f"{page.name}: link to {target} finds no such heading"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_path_named_in_code_exists(page):
    text = page.read_text()
    made_by_the_page = set(re.findall(r"^# file: (\S+)", text, re.M))  # docs/extending.md's worked examples
    named = [c.rstrip(".,;:") for c in CODE.findall(text) if REPO_PATH.fullmatch(c.rstrip(".,;:"))]
    named += [
        a
        for p, argv in command_lines()
        if p == page.relative_to(REPO).as_posix()
        for a in argv
        if REPO_PATH.fullmatch(a)
    ]
    for path in named:
        if not re.search(r"[<>{}*$]", path) and path not in made_by_the_page:
            assert (REPO / path).exists(), f"{page.name} names {path}, which does not exist"


def test_every_make_target_named_exists():
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), re.M))
    named = {argv[1] for _, argv in command_lines() if argv[0] == "make"}
    named |= {m for page in PAGES for m in re.findall(r"`make ([\w-]+)`", page.read_text())}
    assert named and named <= targets, f"make targets the docs name but the Makefile lacks: {sorted(named - targets)}"


def test_every_other_command_is_one_the_project_has():
    for page, argv in command_lines():
        if argv[0] == "python" and argv[1] != "-m":
            assert (REPO / argv[1]).is_file(), f"{page}: {' '.join(argv)}"
        elif argv[0] == ".":
            assert argv[1] == ".venv/bin/activate", f"{page}: the Makefile's virtualenv is .venv"
        else:
            assert argv[0] == "make" or argv[:2] == ("python", "-m"), f"{page}: {' '.join(argv)} is not checked"
    modules = {argv[2] for _, argv in command_lines() if argv[:2] == ("python", "-m")}
    assert modules <= {"ladlit.train", "ladlit.eval", "ladlit.report"}, modules


# --- the commands themselves --------------------------------------------------------------------


@pytest.mark.parametrize("args", ladlit_commands("train"), ids=" ".join)
def test_every_training_command_composes_and_builds(args, tmp_path):
    check_renamed_overrides(filled(args))  # what `python -m ladlit.train` checks before Hydra composes
    if "-m" in args:
        check_sweep_keys(filled(args))
    variants, searched = jobs(args)
    for i, overrides in enumerate(variants):
        cfg = compose_config("train", overrides, tmp_path)
        for key in searched:
            assert OmegaConf.select(cfg, key, default=None) is not None, f"the sweeper searches {key}, which is no key"
        if i == 0:  # one job built in full; the others are compositions of the same constructors
            build_run(cfg)
        else:
            build(cfg.defense, "defense")


@pytest.mark.parametrize("args", ladlit_commands("eval"), ids=" ".join)
def test_every_evaluation_command_composes_with_attacks_that_build(args):
    eps = [] if any(a.startswith("eps=") for a in args) else ["eps=0.03"]  # else the checkpoint's, once loaded
    cfg = compose_config("eval", filled(args) + eps)
    assert cfg.attack, args
    for name, node in cfg.attack.items():
        build(node, f"attack.{name}")


def test_the_report_command_runs_on_a_folder_of_runs(tmp_path, monkeypatch):
    """A folder the docs name must be committed; a placeholder (`multirun/<time>`) is a folder of runs."""
    commands = ladlit_commands("report")
    assert any(PLACEHOLDER.search(a) for args in commands for a in args)
    for path in (a for args in commands for a in args if not a.startswith("-") and not PLACEHOLDER.search(a)):
        assert (REPO / path).is_dir(), f"ladlit.report {path}: no such folder"
    pgd = {"_target_": "ladlit.defenses.PGDTraining", "eps": 0.03, "steps": 5}
    for seed in (0, 1):
        write_run(tmp_path, f"0_seed={seed}", seed, pgd, clean=0.6, pgd20=0.3 + seed / 100)
    code, printed = run_cli("report", [str(tmp_path)], monkeypatch)
    assert code == 0, printed
    assert "| pgd | best.ckpt |" in (tmp_path / "report.md").read_text()
