#!/usr/bin/env bash
# Benchmark: a large change into existing files: sync a 300-participant list, then 100,000 generated
# participants with --force (all six targets); median of 5 runs, as a ratio to a Python csv.reader
# pass over the big list measured in the same run, with peak memory. The line diff of a change this
# large is summarised, so the time grows linearly with the list. --quick: 10,000 participants, 3 runs.
exec bash "$(dirname "$0")/bench.sh" "$@" --cases large --no-syscalls
