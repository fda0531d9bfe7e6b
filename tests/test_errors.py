"""Bad input gives one clear message naming what to fix, before any training starts."""

from __future__ import annotations

import re

import pytest
import torch
from helpers import REPO, compose_config, run_cli, tiny_net

from ladlit.checkpoints import load_checkpoint, load_weights
from ladlit.data import JpegTarballDataModule, TorchvisionDataModule
from ladlit.errors import CheckpointError, ConfigError, DataNotFoundError
from ladlit.train import build_run

# Each config group's bad values, and the one message that refuses each (its key first). The rule
# lives in the constructor of the object the key configures; building the run is the check.
BAD_VALUES = {
    "defense": [
        ("defense.eps=1.5", "defense.eps must be in [0, 1] (pixel units: 8/255"),
        ("defense.alpha=-0.1", "defense.alpha must be in [0, 1]"),
        ("defense.steps=0", "defense.steps must be an integer >= 1"),
        ("defense=trades defense.beta=-1", "defense.beta must be >= 0"),
        ("defense=mart defense.beta=-1", "defense.beta must be >= 0"),
        ("defense=fgsm_rs defense.step_ratio=-1", "defense.step_ratio must be >= 0"),
        ("defense=pgd_awp defense.awp.gamma=-1", "defense.awp.gamma must be >= 0"),
        ("defense=lad defense.eta=-1", "defense.eta must be >= 0"),
        ("defense=lad defense.base.eps=2", "defense.base.eps must be in [0, 1]"),
        ("defense=lad defense.normalize=foo", "defense.normalize must be one of"),
        ("defense=lad defense.scheme=euler", "defense.scheme must be one of"),
        ("defense=lad defense.eta=[0.1,0.2]", "defense.eta has 2 values"),
    ],
    "attack": [
        ("attack.pgd20.steps=0", "attack.pgd20.steps must be an integer >= 1"),
        ("attack.pgd20.alpha=2", "attack.pgd20.alpha must be in [0, 1]"),
        ("eps=2", "eps must be in [0, 1]"),
    ],
    "dataset": [
        ("dataset.batch_size=0", "dataset.batch_size must be an integer >= 1"),
        ("dataset.eval_batch_size=-4", "dataset.eval_batch_size must be an integer >= 1"),
        ("dataset.val_size=-1", "dataset.val_size must be >= 0"),
        ("dataset.test_subset=0", "dataset.test_subset must be an integer >= 1"),
    ],
    "model": [("model.depth=9", "model.depth must be 6n+2")],
    "optimizer": [
        ("optimizer.lr=-1", "optimizer: Invalid learning rate"),
        ("optimizer.momentum=-0.5", "Invalid momentum"),
    ],
    "scheduler": [
        ("scheduler=piecewise scheduler.gamma=2", "scheduler.gamma must be in [0, 1] (the LR factor"),
        ("scheduler=piecewise scheduler.milestones=[0.5,2]", "scheduler.milestones must be in [0, 1] (fractions of"),
        (
            "scheduler.warmup_epochs=1 scheduler.warmup_start=0",
            "scheduler.warmup_start must be in (0, 1] (the first warm-up epoch's LR as a fraction",
        ),
    ],
    "trainer": [("trainer.max_epochs=0", "trainer.max_epochs must be"), ("trainer.precision=16-mixed", "needs a GPU")],
    "callbacks": [
        ("callbacks.label_leak.n_examples=0", "callbacks.label_leak.n_examples must be an integer >= 1"),
        (
            "callbacks.catastrophic_overfitting.ratio=2",
            "callbacks.catastrophic_overfitting.ratio must be in [0, 1] (a fraction",
        ),
        ("callbacks.ema.decay=1.5", "callbacks.ema.decay must be in [0, 1]"),
        ("callbacks.label_leak.threshold=2", "callbacks.label_leak.threshold must be in [0, 1] (an excess share"),
    ],
}


@pytest.mark.parametrize(
    "overrides,message", [case for cases in BAD_VALUES.values() for case in cases], ids=lambda v: str(v)[:40]
)
def test_building_the_run_refuses_each_bad_value_naming_its_key(overrides, message, tmp_path):
    cfg = compose_config("train", ["experiment=quickstart", *overrides.split()], output_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_run(cfg)
    assert not (tmp_path / "run").exists()


# Each top-level key of train.yaml given a value it cannot take, and the start of the message that
# refuses it: the key the user typed, whether ladlit.train reads it or it reaches a constructor
# through an interpolation (`defense.eps: ${eps}` is refused as `eps`).
TOP_LEVEL_VALUES = [
    ("seed=abc", "seed must be an integer in [0, 4294967295]"),
    ("seed=1.5", "seed must be an integer"),
    ("seed=-1", "seed must be an integer"),
    ("eps=-0.1", "eps must be in [0, 1]"),
    ("train_attack_steps=0", "train_attack_steps must be an integer >= 1"),
    ("force_resume=maybe", "force_resume must be true or false"),
    ("one_gpu_per_job=maybe", "one_gpu_per_job must be true or false"),
    ("name=[a,b]", "name must be a non-empty name or path"),
    ("data_dir=null", "data_dir must be a non-empty name or path"),
    ("ema=null", "ema is a group of settings"),
    ("ema.decay=-1", "ema.decay must be in [0, 1] (e.g. 0.999"),
    ("ema.warmup=maybe", "ema.warmup must be true or false"),
    ("speed=5", "speed is a group of settings"),
    ("speed.channels_last=maybe", "speed.channels_last must be true or false"),
    ("speed.compile=maybe", "speed.compile must be true or false"),
]
# ... and those refused outside building the run: before Hydra composes (keys the run fills in
# itself) or when resuming (ckpt_path); run through the command line below (BAD_INPUTS)
TOP_LEVEL_CLI = [
    ("seed=abc", "seed must be an integer"),  # issue 37's example, end to end
    ("ckpt_path=/nowhere/last.ckpt", "Checkpoint /nowhere/last.ckpt does not exist"),
    (
        "output_dir=elsewhere",
        "output_dir=elsewhere: output_dir is the folder Hydra runs the job in; choose it with hydra.run.dir=",
    ),
    ("choices=null", "choices=null: choices records the config options the run was composed from"),
    ("choices.dataset=cifar10", "choose the option itself, e.g. dataset=cifar10"),
    ("choices.model=tiny", "choose the option itself, e.g. model=tiny"),
    ("choices.defense=lad", "choose the option itself, e.g. defense=lad"),
    ("choices.experiment=quickstart", "choose the option itself, e.g. experiment=quickstart"),
]


@pytest.mark.parametrize("override,message", TOP_LEVEL_VALUES, ids=[o for o, _ in TOP_LEVEL_VALUES])
def test_a_top_level_key_is_refused_by_its_own_name(override, message, tmp_path):
    from ladlit.config import compose_config as compose  # the helper would set data_dir after the override

    cfg = compose("train", ["experiment=quickstart", override], output_dir=tmp_path / "run")
    with pytest.raises(ConfigError) as refused:
        build_run(cfg)
    assert str(refused.value).startswith(message), str(refused.value)


def test_every_top_level_key_has_a_bad_value():
    """Each top-level key of train.yaml (and of its groups of settings) and of eval.yaml is in a
    table here, so a new key comes with its refusal."""
    from omegaconf import OmegaConf

    def keys(name: str, nested: bool) -> set[str]:
        config = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / f"{name}.yaml"))
        config = {k: v for k, v in config.items() if k not in ("defaults", "hydra")}
        return set(config) | {f"{k}.{sub}" for k, v in config.items() if nested and isinstance(v, dict) for sub in v}

    tried = {o.partition("=")[0] for o, _ in [*TOP_LEVEL_VALUES, *TOP_LEVEL_CLI]}
    assert keys("train", nested=True) - tried == set()
    # robustbench names a model of RobustBench's zoo: an unknown name is the zoo's own refusal
    assert keys("eval", nested=False) - {o.partition("=")[0] for o, _ in EVAL_VALUES} == {"robustbench"}


def test_every_config_group_has_bad_values():
    assert set(BAD_VALUES) >= {p.name for p in (REPO / "conf").iterdir() if p.is_dir()} - {
        "hydra",
        "logger",
        "experiment",
    }


def test_cli_unknown_option_is_hydras_message(tmp_path, monkeypatch):
    code, printed = run_cli("train", ["defense=nonsense", f"hydra.run.dir={tmp_path}"], monkeypatch)
    assert code != 0 and "Could not find 'defense/nonsense'" in printed


def test_corrupt_checkpoint(tmp_path):
    path = tmp_path / "broken.ckpt"
    path.write_bytes(b"PK\x03\x04 not really a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(path)


def test_mismatched_checkpoint_lists_the_keys():
    state = tiny_net(num_classes=5).state_dict()
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_weights(tiny_net(num_classes=10), state, source="run.ckpt")


def test_cli_eval_of_missing_checkpoint(tmp_path, monkeypatch):
    code, printed = run_cli("eval", [f"ckpt={tmp_path}/nope.ckpt"], monkeypatch, tmp_path)
    assert code == 2 and "does not exist" in printed and "Traceback" not in printed
    assert list(tmp_path.iterdir()) == []  # nothing written where it was run (no Hydra eval.log)


def test_missing_datasets_say_how_to_get_them(tmp_path):
    with pytest.raises(DataNotFoundError, match="dataset.download=true"):
        TorchvisionDataModule(name="cifar10", root=str(tmp_path), num_classes=10, mean=[0] * 3, std=[1] * 3).load()
    with pytest.raises(DataNotFoundError, match="set dataset.path"):
        JpegTarballDataModule(path=str(tmp_path / "x.tar.gz"), num_classes=10, mean=[0] * 3, std=[1] * 3).load()


def _truncated_tarball(folder):
    """The toy layout of test_data, cut in the middle of its gzip stream."""
    from helpers import make_tarball

    whole = folder / "whole.tar.gz"
    make_tarball(whole, n_per_class=30)
    cut = folder / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    whole.unlink()
    return cut


def _plain_state_dict(folder):
    path = folder / "weights.pt"
    torch.save(tiny_net(channels=1).state_dict(), path)
    return path


BAD_INPUTS = {
    "truncated archive": (
        "train",
        lambda d: [
            "experiment=quickstart",
            "dataset=cifar10_jpeg",
            f"dataset.path={_truncated_tarball(d)}",
            f"dataset.cache_dir={d}/cache",
        ],
        "is truncated or corrupt",
    ),
    "block out of range": (
        "train",
        lambda d: ["experiment=quickstart", "defense=lad", "defense.blocks=[99]"],
        "defense.blocks=[99] is out of range",
    ),
    "eval without ckpt": ("eval", lambda d: [], "ckpt=<run directory or .ckpt>"),
    "state_dict without dataset": (
        "eval",
        lambda d: [f"ckpt={_plain_state_dict(d)}", "model=tiny"],
        "name the architecture and data",
    ),
    "n_examples of zero": (
        "eval",
        lambda d: [f"ckpt={_plain_state_dict(d)}", "model=tiny", "dataset=digits", "n_examples=0"],
        "n_examples must be an integer >= 1",
    ),
    "missing data file": (
        "train",
        lambda d: ["experiment=quickstart", "dataset=cifar10_jpeg", f"data_dir={d}/nowhere"],
        "LADLIT_DATA_DIR",
    ),
    "fp16 on a CPU": ("train", lambda d: ["experiment=quickstart", "trainer.precision=16-mixed"], "needs a GPU"),
    # each config group's values outside what they mean: refused by the object's own check, nothing written
    "unknown normalisation": (
        "train",
        lambda d: ["experiment=quickstart", "defense=lad", "defense.normalize=foo"],
        "defense.normalize must be one of",
    ),
    "eta list of the wrong length": (
        "train",
        lambda d: ["experiment=quickstart", "defense=lad", "defense.eta=[0.1,0.2]"],
        "defense.eta has 2 values",
    ),
    "batch of zero": (
        "train",
        lambda d: ["experiment=quickstart", "dataset.batch_size=0"],
        "dataset.batch_size must be",
    ),
    "empty test subset": (
        "train",
        lambda d: ["experiment=quickstart", "dataset.test_subset=0"],
        "dataset.test_subset must be",
    ),
    "negative learning rate": (
        "train",
        lambda d: ["experiment=quickstart", "optimizer.lr=-1"],
        "Invalid learning rate",
    ),
    "negative momentum": ("train", lambda d: ["experiment=quickstart", "optimizer.momentum=-0.5"], "Invalid momentum"),
    "no epochs": ("train", lambda d: ["experiment=quickstart", "trainer.max_epochs=0"], "trainer.max_epochs must be"),
    "truncated metrics.json": ("report", lambda d: _truncated_metrics(d), "no finished run"),
}


BAD_INPUTS.update(  # fast_dev_run: a start these let through is over in seconds
    {
        f"top-level {o}": ("train", lambda d, o=o: ["experiment=quickstart", "trainer.fast_dev_run=true", o], m)
        for o, m in TOP_LEVEL_CLI
    }
)


def _truncated_metrics(folder):
    (folder / "run").mkdir()
    (folder / "run" / "metrics.json").write_text('{"test/acc_clean": 0.5, "run": {"ba')
    return [str(folder)]


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_one_message_exit_2_and_writes_nothing(case, tmp_path, monkeypatch):
    tool, make_args, message = BAD_INPUTS[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    args = make_args(inputs)
    before = sorted(p for p in tmp_path.rglob("*"))
    run_dir = tmp_path / "run"
    code, printed = run_cli(
        tool, [f"hydra.run.dir={run_dir}", *args] if tool == "train" else args, monkeypatch, tmp_path
    )
    assert code == 2, printed[-2000:]
    assert message in printed and "Traceback" not in printed, printed[-2000:]
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written: no run directory, no cache, no results


# Each top-level key of eval.yaml given a value it cannot take, evaluating a plain state_dict of the
# tiny model on the digits: one message that starts with the key, exit 2, nothing written.
EVAL_VALUES = [
    ("ckpt=null", "say what to evaluate: ckpt=<run directory or .ckpt>"),
    ("seed=abc", "seed must be an integer in [0, 4294967295]"),
    ("eps=2", "eps must be in [0, 1]"),
    ("n_examples=0", "n_examples must be an integer >= 1"),
    ("batch_size=0", "batch_size must be an integer >= 1"),
    ("sanity_examples=-1", "sanity_examples must be an integer >= 1"),
    ("eps_sweep=abc", "eps_sweep must be a list"),
    ("layer_profile=maybe", "layer_profile must be true or false"),
    ("label_leak=maybe", "label_leak must be true or false"),
    ("layer_profile_sizes=[-1]", "layer_profile_sizes must be >= 0"),
    ("evaluations=5", "evaluations is a group of evaluations by name"),
    ("data_dir=null", "data_dir must be a non-empty name or path"),
    ("robustbench_dir=null", "robustbench_dir must be a non-empty name or path"),
]


@pytest.fixture(scope="module")
def tiny_digits_weights(tmp_path_factory):
    """A plain state_dict of model=tiny for dataset=digits."""
    from ladlit.config import build

    path = tmp_path_factory.mktemp("weights") / "weights.pt"
    torch.save(build(compose_config("eval", ["ckpt=x", "model=tiny", "dataset=digits"]).model).state_dict(), path)
    return path


@pytest.mark.parametrize("override,message", EVAL_VALUES, ids=[o for o, _ in EVAL_VALUES])
def test_an_eval_key_is_refused_by_its_own_name(override, message, tiny_digits_weights, tmp_path, monkeypatch):
    args = {"ckpt": str(tiny_digits_weights), "model": "tiny", "dataset": "digits", "attack": "[fgsm]"}
    args |= {"n_examples": "16", "eps_sweep": "[]", "sanity_examples": "0"}  # quick, should a value get through
    key, _, value = override.partition("=")
    code, printed = run_cli("eval", [f"{k}={v}" for k, v in {**args, key: value}.items()], monkeypatch, tmp_path)
    assert code == 2 and f"error: {message}" in printed and "Traceback" not in printed, printed[-2000:]
    assert list(tmp_path.iterdir()) == []  # no results, no Hydra log
