#!/usr/bin/env bash
# Benchmark: growth. `fetch --format json` and the first `sync` (all six targets) at 10,000, 30,000,
# 100,000 and 300,000 generated participants, median of 5 runs each, as cost per participant and as a
# ratio to a Python csv.reader pass over the same file; the goal is a constant cost per participant
# (within 25 %) and a sync at 300,000 under 600 MB peak. Other sizes: --sizes 10000,20000 --runs 3.
exec bash "$(dirname "$0")/bench.sh" growth "$@"
