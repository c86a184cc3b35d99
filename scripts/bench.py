#!/usr/bin/env python3
"""Benchmarks of bits-tls at scale, as ratios to a bare Python csv.reader pass over the same list.

The machine the project is measured on is shared and noisy, so every figure is also given as a ratio
to a baseline measured in the same run, interleaved with the tool's own runs: a Python process that
reads the list, decodes it (utf-8-sig) and iterates over every row with csv.reader. Wall time and
peak memory (maximum resident set) of each run come from /usr/bin/time; every command's stdout goes
to a file; the median of the runs is reported. Called by scripts/bench*.sh; see the README's
Performance.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME = "/usr/bin/time"
WORK = None  # the bench's scratch directory, set by main()
BASELINE = (
    "import csv, sys\n"
    "with open(sys.argv[1], newline='', encoding='utf-8-sig') as f:\n"
    "    n = sum(1 for _ in csv.reader(f, delimiter=';'))\n"
)
TARGETS = [
    ("postfix-policy", "out/policy"),
    ("postfix-senders", "out/senders"),
    ("exim-domains", "out/exim-domains"),
    ("exim-main", "out/exim-main"),
    ("exim-acl", "out/exim-acl"),
    ("exim-router", "out/exim-router"),
    ("exim-transport", "out/exim-transport"),
    ("exchange", "out/exchange.ps1"),
    ("exchange-online", "out/exchange-online.ps1"),
]


def run(cmd, cwd=None, stdout=None):
    """Runs cmd under /usr/bin/time with its stdout to a file; returns (wall seconds, peak MB).
    A failure (exit code other than 0 or 2) stops the bench."""
    timing = os.path.join(WORK, "time.out")
    stdout = stdout or os.path.join(WORK, "stdout.out")
    with open(stdout, "wb") as out:
        with open(os.path.join(WORK, "stderr.out"), "w+b") as err:
            p = subprocess.run([TIME, "-f", "%e %M", "-o", timing] + cmd, cwd=cwd, stdout=out,
                               stderr=err)
            err.seek(0)
            p.stderr = err.read()
    # /usr/bin/time says "Command exited with non-zero status 2" first when the exit code is not 0.
    secs, kb = open(timing).read().split("\n")[-2].split()
    if p.returncode not in (0, 2):
        sys.exit(f"bench: {' '.join(cmd)} exited with {p.returncode}:\n{p.stderr.decode(errors='replace')}")
    return float(secs), int(kb) / 1024


def gen_list(n, path):
    with open(path, "wb") as f:
        subprocess.run(["bash", os.path.join(ROOT, "scripts/gen-big-list.sh"), str(n)], stdout=f, check=True)


def small_change(src, dst):
    """The list with a few rows changed: three participants' domains renamed, one row removed."""
    with open(src, "rb") as f:
        lines = f.read().split(b"\r\n")
    for i in (5, len(lines) // 2, len(lines) - 3):
        lines[i] = lines[i].replace(b"virksomhet-", b"endret-virksomhet-")
    del lines[len(lines) // 3]
    with open(dst, "wb") as f:
        f.write(b"\r\n".join(lines))


def config(directory, source):
    os.makedirs(os.path.join(directory, "out"), exist_ok=True)
    with open(os.path.join(directory, "bits-tls.toml"), "w") as f:
        f.write(f'source = "{source}"\n[exchange_online]\nmax_domains_per_connector = 1000\n')
        for target, path in TARGETS:
            f.write(f'[[output]]\ntarget = "{target}"\npath = "{path}"\n')


class Bench:
    def __init__(self, binary, work, runs):
        self.bin = binary
        self.work = work
        self.runs = runs

    def baseline(self, csv_path):
        return run([sys.executable, "-c", BASELINE, csv_path])

    def measure(self, csv_path, cases):
        """cases: name -> function(round) -> (secs, MB). Each round runs the baseline, then every case,
        so a slow moment of the machine falls on both."""
        samples = {name: [] for name in ["python"] + list(cases)}
        for r in range(self.runs):
            samples["python"].append(self.baseline(csv_path))
            for name, case in cases.items():
                samples[name].append(case(r))
        return {
            name: (statistics.median(s for s, _ in v), max(m for _, m in v))
            for name, v in samples.items()
        }

    def sync_cases(self, csv_path, changed_path, small_path=None):
        """fetch json, first sync, no-change sync, small change, check, each in its own directory;
        with small_path also a large change (a 300-participant list, then this one with --force)."""
        b = self.bin
        seeded = os.path.join(self.work, "seeded")

        def fetch(r):
            return run([b, "fetch", "--source", csv_path, "--format", "json", "-q"],
                       stdout=os.path.join(self.work, "fetch.json"))

        def first(r):
            d = os.path.join(self.work, f"first{r}")
            config(d, csv_path)
            res = run([b, "sync"], cwd=d)
            if not os.path.exists(seeded):
                shutil.copytree(d, seeded)
            shutil.rmtree(d)
            return res

        def ensure_seeded():
            if not os.path.exists(seeded):
                config(seeded, csv_path)
                run([b, "sync"], cwd=seeded)

        def nochange(r):
            ensure_seeded()
            return run([b, "sync"], cwd=seeded)

        def change(r):
            ensure_seeded()
            d = os.path.join(self.work, f"change{r}")
            shutil.copytree(seeded, d)
            res = run([b, "sync", "--source", changed_path], cwd=d)
            shutil.rmtree(d)
            return res

        def check(r):
            ensure_seeded()
            return run([b, "check"], cwd=seeded)

        def large(r):
            d = os.path.join(self.work, f"large{r}")
            config(d, small_path)
            run([b, "sync", "-q"], cwd=d)
            res = run([b, "sync", "--force", "--source", csv_path], cwd=d)
            shutil.rmtree(d)
            return res

        cases = {
            "fetch --format json": fetch,
            "sync, first run": first,
            "sync, no change": nochange,
            "sync, a small change": change,
            "check": check,
        }
        if small_path:
            cases["sync --force, 300 -> all"] = large
        return cases


GOALS = {
    "fetch --format json": (1.5, 120),
    "sync, first run": (7, 200),
    "sync, no change": (2, None),
    "sync, a small change": (8, None),
    "check": (2, None),
    "sync --force, 300 -> all": (8, None),
}
# --cases names -> the rows above
CASES = {
    "fetch": "fetch --format json",
    "first": "sync, first run",
    "nochange": "sync, no change",
    "change": "sync, a small change",
    "check": "check",
    "large": "sync --force, 300 -> all",
}


def verdict(ratio, mb, goal):
    max_ratio, max_mb = goal
    ok = ratio <= max_ratio and (max_mb is None or mb <= max_mb)
    text = f"<= {max_ratio}x" + (f", <= {max_mb} MB" if max_mb else "")
    return text, "PASS" if ok else "FAIL"


def syscalls(bench, csv_path, which):
    """write and ioctl calls of fetch --format json and a first sync, counted by strace."""
    if shutil.which("strace") is None:
        print("syscalls: needs strace (apt-get install strace)")
        return True
    ok = True
    for name, cmd, cwd in [
        ("fetch --format json", [bench.bin, "fetch", "--source", csv_path, "--format", "json", "-q"], None),
        ("sync, first run", [bench.bin, "sync"], os.path.join(bench.work, "strace-sync")),
    ]:
        if name not in which:
            continue
        if cwd:
            config(cwd, csv_path)
        log = os.path.join(bench.work, "strace.log")
        out = os.path.join(bench.work, "strace.out")
        run(["strace", "-f", "-c", "-e", "trace=write,ioctl", "-o", log] + cmd, cwd=cwd, stdout=out)
        counts = {}
        for line in open(log):
            parts = line.split()
            if parts and parts[-1] in ("write", "ioctl"):
                counts[parts[-1]] = int(parts[3])
        size = os.path.getsize(out)
        writes, ioctls = counts.get("write", 0), counts.get("ioctl", 0)
        # stdout to a file: writes in proportion to the output (8 KiB buffers and more; the output
        # files are written in a few large writes), and at most one terminal check per stream.
        good = writes <= size / 4096 + 64 and ioctls <= 3
        ok &= good
        print(f"syscalls, {name}: {writes} writes for {size / 1e6:.1f} MB on stdout, {ioctls} ioctl"
              f" -- {'PASS' if good else 'FAIL'}")
        if cwd:
            shutil.rmtree(cwd)
    return ok


def main_table(args):
    work = args.work
    csv_path = os.path.join(work, "big.csv")
    changed = os.path.join(work, "changed.csv")
    small = os.path.join(work, "small.csv")
    gen_list(args.participants, csv_path)
    small_change(csv_path, changed)
    gen_list(300, small)
    bench = Bench(args.bin, work, args.runs)
    all_cases = bench.sync_cases(csv_path, changed, small)
    names = [CASES[c] for c in args.cases]
    res = bench.measure(csv_path, {n: all_cases[n] for n in names})
    base = res.pop("python")[0]
    print(f"{args.participants} participants ({os.path.getsize(csv_path) / 1e6:.1f} MB), "
          f"median of {args.runs} runs, stdout to a file; Python csv.reader pass: {base:.3f} s")
    print("| command | median | x Python | peak | goal | |\n|---|---|---|---|---|---|")
    failed = False
    for name, (secs, mb) in res.items():
        ratio = secs / base
        goal, word = verdict(ratio, mb, GOALS[name])
        failed |= word == "FAIL"
        print(f"| {name} | {secs:.3f} s | {ratio:.2f}x | {mb:.0f} MB | {goal} | {word} |")
    if not args.no_syscalls:
        failed |= not syscalls(bench, csv_path, names)
    return 1 if failed and args.strict else 0


def growth(args):
    work = args.work
    rows = []
    for n in args.sizes:
        csv_path = os.path.join(work, f"list-{n}.csv")
        gen_list(n, csv_path)
        bench = Bench(args.bin, work, args.runs)
        cases = bench.sync_cases(csv_path, csv_path)
        res = bench.measure(csv_path, {k: cases[k] for k in ("fetch --format json", "sync, first run")})
        base = res["python"][0]
        rows.append((n, base, res["fetch --format json"], res["sync, first run"]))
        os.remove(csv_path)
        shutil.rmtree(os.path.join(work, "seeded"), ignore_errors=True)
    print(f"median of {args.runs} runs; cost per participant (µs), and as a ratio to the Python pass")
    print("| participants | Python | fetch json | x Python | first sync | x Python | sync peak |")
    print("|---|---|---|---|---|---|---|")
    for n, base, (fs, _), (ss, sm) in rows:
        print(f"| {n} | {base / n * 1e6:.2f} | {fs / n * 1e6:.2f} | {fs / base:.2f}x | "
              f"{ss / n * 1e6:.2f} | {ss / base:.2f}x | {sm:.0f} MB |")
    per = [ss / n for n, _, _, (ss, _) in rows]
    spread = max(per) / min(per) - 1
    mem = rows[-1][3][1]
    failed = spread > 0.25
    print(f"first sync per participant: spread {spread * 100:.0f} % across the sizes (goal: within 25 %)"
          f" -- {'FAIL' if failed else 'PASS'}")
    if rows[-1][0] >= 300000:
        failed |= mem > 600
        print(f"first sync at {rows[-1][0]}: {mem:.0f} MB peak (goal: <= 600 MB)"
              f" -- {'PASS' if mem <= 600 else 'FAIL'}")
    return 1 if failed and args.strict else 0


def main():
    global WORK
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/bits-tls"))
    ap.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("table", help="the goals table at one size")
    t.add_argument("--participants", type=int, default=100000)
    t.add_argument("--runs", type=int, default=5)
    t.add_argument("--cases", type=lambda s: s.split(","), default=list(CASES),
                   help="comma-separated: " + ",".join(CASES))
    t.add_argument("--no-syscalls", action="store_true")
    g = sub.add_parser("growth", help="cost per participant across sizes")
    g.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")],
                   default=[10000, 30000, 100000, 300000])
    g.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    args.bin = os.path.abspath(args.bin)
    if not os.access(TIME, os.X_OK):
        sys.exit(f"bench: needs {TIME} (apt-get install time)")
    for c in getattr(args, "cases", []):
        if c not in CASES:
            sys.exit(f"bench: unknown case {c!r}; known: {', '.join(CASES)}")
    WORK = args.work = tempfile.mkdtemp(prefix="bits-tls-bench.")
    try:
        return main_table(args) if args.what == "table" else growth(args)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
