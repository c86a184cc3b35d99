#!/usr/bin/env bash
# Benchmark: `bits-tls fetch --format json` on 100,000 generated participants (scripts/gen-big-list.sh),
# median of 5 runs, as a ratio to a Python csv.reader pass over the same file, with peak memory and
# the write/ioctl counts (strace). Goal: <= 1.5x the Python pass, <= 120 MB. --quick: 10,000, 3 runs.
exec bash "$(dirname "$0")/bench.sh" "$@" --cases fetch
