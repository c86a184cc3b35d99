#!/usr/bin/env bash
# Benchmark: `bits-tls sync` with all six targets (the four Exim pieces as four outputs) on 100,000
# generated participants: the first run, a re-run with no change, a run with a few rows changed, and
# `check`; median of 5 runs each, as ratios to a Python csv.reader pass measured in the same run, with
# peak memory and the first sync's write/ioctl counts (strace). --quick: 10,000 participants, 3 runs.
exec bash "$(dirname "$0")/bench.sh" "$@" --cases first,nochange,change,check
