"""Composing and checking run configs: what `python -m ladlit.<tool> <overrides>` runs with, for
scripts, notebooks and tests, and the checks every config passes before any work starts."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from ladlit.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
JOB_DIR_CHARS = 80
# characters Hydra's override grammar reads unquoted in a value (letters, digits, `_.+@-`), so
# `ladlit.eval ckpt=<job dir>` parses as typed; `/` also separates folders
NOT_IN_JOB_DIR = re.compile(r"[^A-Za-z0-9_.+@-]+")


def job_dirname(num: Any, overrides: str) -> str:
    """A sweep job's folder name: its number and its overrides (`hydra.job.override_dirname`, items
    joined by `__`), e.g. `0_defense.eta-0.001__defense.normalize-rms`. Brackets and quotes are
    dropped and any other character the override grammar would parse (`=`, `,`, `/`, spaces)
    becomes `-`, so the path works in `ckpt=` and `hydra.run.dir=` unquoted; the number keeps names
    unique. Cut to JOB_DIR_CHARS characters with a short hash of the whole list when longer (the
    raw list can exceed the file-name limit)."""
    name = NOT_IN_JOB_DIR.sub("-", f"{num}_{overrides}".translate(str.maketrans("", "", "[]{}()'\"")))
    if len(name) <= JOB_DIR_CHARS:
        return name
    digest = hashlib.sha1(overrides.encode()).hexdigest()[:8]
    return f"{name[: JOB_DIR_CHARS - 10]}+{digest}"


def project_path(path: str) -> str:
    """`path` made absolute against the project folder (not the working directory), so data is
    found the same wherever a command is typed."""
    full = Path(path).expanduser()
    return str(full if full.is_absolute() else (CONF_DIR.parent / full).resolve())


def sqlite_storage(path: str) -> str:
    """`sqlite:///<absolute path>` for an Optuna storage, its folder made first (the sweeper
    creates the study before the launcher makes the sweep directory)."""
    file = Path(path).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"


def resumed_seed(seed: int, sweep_dir: str) -> int:
    """A sampler seed that moves on when a sweep is resumed: `seed` plus the trials its directory
    already holds, so a resumed search does not draw its first trials' values again."""
    return int(seed) + sum(1 for _ in Path(sweep_dir).glob("*/metrics.json"))


OmegaConf.register_new_resolver("ladlit_job_dir", job_dirname, replace=True)
OmegaConf.register_new_resolver("ladlit_resumed_seed", resumed_seed, replace=True)
OmegaConf.register_new_resolver("ladlit_sqlite", sqlite_storage, replace=True)
OmegaConf.register_new_resolver("ladlit_path", project_path, replace=True)


def compose_config(name: str, overrides: list[str], output_dir: str | Path | None = None) -> DictConfig:
    """The config `python -m ladlit.<name> <overrides>` would run with, for scripts, notebooks and
    tests; without its `hydra` node. A run config's `output_dir` defaults to the directory Hydra
    would have made.

    Interpolations stay lazy, as in a Hydra run (`ladlit.eval` fills `eps` from the checkpoint
    after composing); `${hydra:...}` ones resolve against this compose until the next one."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(name, list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        if "output_dir" in cfg:
            cfg.output_dir = str(output_dir or cfg.hydra.run.dir)
        del cfg.hydra
    return cfg


def quoted(value: str) -> str:
    """`value` as one string in Hydra's override grammar, e.g. a run directory an older sweep named
    `0_defense.eta=0.001,seed=1` (its `=` and `,` would otherwise be parsed)."""
    escaped = re.sub(r"(\\*)(')", lambda m: m.group(1) * 2 + "\\'", value)  # backslashes before a quote double
    escaped = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, escaped).replace("${", "\\${")  # no interpolation
    return "'" + escaped + "'"


def build(node: DictConfig, key: str | None = None, **kwargs: Any) -> Any:
    """`instantiate(node, **kwargs)`, a constructor's refusal turned into one ConfigError that
    names the value's place in the config: `defense.base.eps must be in [0, 1] ...`.

    Building is how a config is checked: each constructor checks its own arguments, and nothing
    repeats those rules. `key` names a node that cannot tell its own place (a run's saved config
    read back); otherwise Hydra's `full_key` does."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if not isinstance(err.__cause__, (ValueError, TypeError)):
            raise
        found = re.search(r"full_key: (\S+)", str(err))
        where, cause, source = found.group(1) if found else key, err.__cause__, None
        if isinstance(cause, ConfigError) and cause.key and where:
            source = interpolated_from(node, f"{where}.{cause.key}")
        raise named_refusal(cause, where, source) from None


def named_refusal(err: Exception, where: str | None, source: str | None = None) -> ConfigError:
    """`err` as a ConfigError that starts with the config key it refuses (`defense.eps must be
    ...` when the constructor named its parameter, else `optimizer: ...`). `source`: the key the
    value came from whole through an interpolation (`defense.eps: ${eps}`), the one to change."""
    if where is None:
        return ConfigError(str(err))
    if isinstance(err, ConfigError) and err.key:
        return ConfigError(f"{source}{str(err).removeprefix(err.key)}" if source else f"{where}.{err}")
    return ConfigError(f"{where}: {err}")


def interpolated_from(node: Any, key: str) -> str | None:
    """The key that `key` (a full key in `node`'s config) takes its value from whole, as
    `defense.eps: ${eps}` takes `eps` and `callbacks.ema.decay: ${ema.decay}` takes `ema.decay`;
    None when `key` is set itself."""
    if not isinstance(node, DictConfig):
        return None
    parent, _, leaf = key.rpartition(".")
    root = node._get_root()  # Hydra's full keys start at the root; OmegaConf has no public accessor
    owner = OmegaConf.select(root, parent, throw_on_resolution_failure=False) if parent else root
    raw = OmegaConf.to_container(owner, resolve=False).get(leaf) if isinstance(owner, DictConfig) else None
    found = re.fullmatch(r"\$\{(\w[\w.]*)\}", raw) if isinstance(raw, str) else None
    return found.group(1) if found else None


BASE_KEYS = ("eps", "alpha", "steps", "beta", "bn_mode", "random_start")


def check_renamed_overrides(overrides: list[str]) -> None:
    """Refuse the pre-0.2 spellings of the base defense with the new one (Hydra's own error would
    suggest `+key=`, which composes a config that fails later)."""
    layerwise = any(re.fullmatch(r"defense=lad\w*", o) for o in overrides)
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "defense.base" and re.fullmatch(r"\w+", value):
            raise ConfigError(
                f"{override}: the base defense is a config node now; choose it with defense@defense.base={value}"
            )
        if layerwise and key.startswith("defense.") and key.removeprefix("defense.") in BASE_KEYS:
            raise ConfigError(
                f"{override}: under a layer-wise defense the base's keys live in defense.base; write defense.base.{override.removeprefix('defense.')}"
            )


def check_derived_keys(overrides: list[str]) -> None:
    """Refuse setting a key the run fills in from Hydra (`output_dir`, `choices`), naming what to
    set instead: by hand, it would part the run from its log or mislabel it in reports."""
    for override in overrides:
        key, _, value = override.partition("=")
        top, _, sub = key.lstrip("+~").partition(".")
        if top == "output_dir":
            raise ConfigError(
                f"{override}: output_dir is the folder Hydra runs the job in; choose it with hydra.run.dir=<folder> "
                "(hydra.sweep.dir=<folder> in a multirun)"
            )
        if top == "choices":
            raise ConfigError(
                f"{override}: choices records the config options the run was composed from; choose the option "
                f"itself, e.g. {sub or 'dataset'}={value if sub and value else '<option>'}"
            )


def check_sweep_keys(overrides: list[str]) -> None:
    """Refuse a multirun that sweeps a group's options (defense=pgd,lad) together with a key that
    only some of them have (defense.eta=...): Hydra would stop at the first job lacking the key
    with a struct error. Says which options have it and how to sweep it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    # "=" leaves out Hydra's flags and their values (--cfg job, -cn name) and deletions (~key)
    keys = [o for o in overrides if "=" in o and not o.startswith(("hydra", "-"))]
    parsed = OverridesParser.create().parse_overrides(keys)
    choices = {
        o.key_or_group: [str(v) for v in o.sweep_string_iterator()] if o.is_sweep_override() else [str(o.value())]
        for o in parsed
        if (CONF_DIR / o.key_or_group).is_dir() and o.package is None
    }
    for o in parsed:
        group, _, _ = o.key_or_group.partition(".")
        if o.is_add() or o.is_delete() or group not in choices or len(choices[group]) < 2 or o.key_or_group == group:
            continue
        has = {
            c: OmegaConf.select(compose_config("train", [f"{group}={c}"]), o.key_or_group, default=_ABSENT)
            is not _ABSENT
            for c in choices[group]
        }
        lacking = [c for c, present in has.items() if not present]
        if lacking:
            having = [c for c, present in has.items() if present]
            raise ConfigError(
                f"{o.key_or_group} exists for {group}={','.join(having) or '(none)'} but not for {group}={','.join(lacking)}, so one "
                f"sweep cannot set it on every job. Sweep the options that have it on their own "
                f"(-m {group}={','.join(having) or '...'} {o.input_line.split('=', 1)[0]}=...) and the others in a second sweep"
                + (
                    " (defense=lad defense.eta=0 trains exactly as PGD-AT, so an eta sweep can include it)."
                    if o.key_or_group == "defense.eta"
                    else "."
                )
            )


_ABSENT = object()
