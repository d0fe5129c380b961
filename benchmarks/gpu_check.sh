#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): parity, BASE update vs transformers in bf16 / fp16,
# 2-minute BASE pre-training in bf16 and fp16, inference RTF; one table. --smoke: tiny, CPU is fine.
# Sets up .venv (make setup) when it is missing; writes benchmarks/results/gpu_check.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || make setup >&2
exec .venv/bin/python benchmarks/gpu_check.py --out benchmarks/results/gpu_check${1:+_smoke}.md "$@"
