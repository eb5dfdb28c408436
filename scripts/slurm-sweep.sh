#!/usr/bin/env bash
# One shard of a ledgersim sweep per Slurm array task.
#   sbatch --array=0-31 scripts/slurm-sweep.sh SCENARIO.toml A..B
# Every task takes seeds number i, i+k, i+2k, ... of A..B (k = the array's size)
# and writes sweep-<task>.json; a task whose shard has failing seeds exits 1.
#SBATCH --job-name=ledgersim-sweep
#SBATCH --cpus-per-task=1
#SBATCH --time=04:00:00
set -euo pipefail
scenario=${1:?usage: slurm-sweep.sh SCENARIO.toml A..B}
seeds=${2:?usage: slurm-sweep.sh SCENARIO.toml A..B}
task=${SLURM_ARRAY_TASK_ID:?run this as a Slurm array job (sbatch --array=0-N)}
count=${SLURM_ARRAY_TASK_COUNT:?run this as a Slurm array job (sbatch --array=0-N)}
exec ledgersim sweep "$scenario" --seeds "$seeds" --shard "$task/$count" --jobs 1 --json \
  >"sweep-$task.json"
