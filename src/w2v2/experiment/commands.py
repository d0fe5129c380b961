"""``w2v2 experiment``: the low-resource study and the ablations."""

from __future__ import annotations

import argparse

from . import ablation, lowres


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="end-to-end experiments")
    esub = p.add_subparsers(dest="experiment", required=True)
    lowres.add_parser(esub)
    ablation.add_parser(esub)
