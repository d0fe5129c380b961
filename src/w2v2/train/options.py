"""Command-line options for every TrainConfig field (``--max-updates``, ``--lr`` ...)."""

from __future__ import annotations

import argparse
import dataclasses
import json

from .config import TrainConfig


def add_train_options(p: argparse.ArgumentParser, defaults: TrainConfig, description: str | None = None) -> None:
    """One option per TrainConfig field; ``description`` says where the defaults come from."""
    g = p.add_argument_group("training (defaults depend on the preset)", description)
    g.add_argument("--train-config", help="JSON file of training fields (explicit options override it)")
    for f in dataclasses.fields(TrainConfig):
        if f.name == "extra":
            continue
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, tuple):
            g.add_argument(flag, type=float, nargs=len(value), default=None, metavar="X")
        else:
            g.add_argument(flag, type=type(value), default=None, help=f"default {value}")


def train_config_from_args(args: argparse.Namespace, defaults: TrainConfig) -> TrainConfig:
    values = dataclasses.asdict(defaults)
    if getattr(args, "train_config", None):  # a JSON file of fields; explicit options win
        with open(args.train_config) as fh:
            values.update(json.load(fh))
    for f in dataclasses.fields(TrainConfig):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = tuple(given) if isinstance(values[f.name], tuple) else given
    return TrainConfig.from_dict(values)
