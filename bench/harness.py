#!/usr/bin/env python3
"""mixreg against every PyTorch peer available, row by row, in one run (bench/run.sh).

For each row (a model, its data, batch and precision) and each of ROUNDS
rounds, `mixreg bench` and then each peer (bench/torch_peer.py under
PyTorch 1.x eager, 2.x eager, 2.x + torch.compile) run one after the other,
so that a change in the machine's load touches every contender alike. Each
process's peak RSS comes from wait4. Then one markdown table per metric:
the median of each cell with its spread (min-max over the rounds), and the
ratio of mixreg's median to the best peer's (highest rate, lowest RSS),
naming that peer; and a table of GFLOP/s against the machine's peak rates
(`mixreg bench --sgemm`: OpenBLAS SGEMM for fp32 rows, oneDNN's bfloat16
kernels for bf16 rows, "n/a" where this CPU has none).

Standard library only: it runs under Debian's python3 whatever the peers use.
"""
import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER_SCRIPT = "bench/torch_peer.py"
CIFAR = "synthetic:3x32x32"
IMAGENET = "synthetic:3x224x224"

# name: model, data ("fashion-mnist" = each side's default Fashion-MNIST), batch,
# classes (synthetic data), bf16, steps, warm-up steps, eval batches (default 8),
# rounds (None: ROUNDS). Steps are sized so that every row together takes about
# half an hour on a quiet 2-core machine, most of it torch.compile compiling.
# The small models evaluate 512 batches, going round 64 distinct ones (both
# sides): at 8, mixreg's evaluation of the MLP took 8 ms, and one slow batch
# moved its median by 10%; at 64 (60 ms), one 15 ms stall of the virtual
# machine (its steal time) took a round from 133K to 99K img/s.
ROWS = {
    "mlp": dict(model="mlp", data="fashion-mnist", batch=128, bf16=False, steps=200, warmup=20, eval_batches=512),
    "lenet5": dict(model="lenet5", data="fashion-mnist", batch=128, bf16=False, steps=100, warmup=10,
                   eval_batches=512),
    "resnet20": dict(model="resnet20", data=CIFAR, batch=128, bf16=False, steps=30, warmup=5),
    "resnet20-bf16": dict(model="resnet20", data=CIFAR, batch=128, bf16=True, steps=30, warmup=5),
    "preact18": dict(model="preact18", data=CIFAR, batch=128, bf16=False, steps=8, warmup=2),
    "resnet50": dict(model="resnet50", data=IMAGENET, batch=32, classes=1000, bf16=False, steps=3, warmup=1,
                     eval_batches=2, rounds=2),
    "resnet50-bf16": dict(model="resnet50", data=IMAGENET, batch=32, classes=1000, bf16=True, steps=3, warmup=1,
                          eval_batches=2, rounds=2),
}
METRICS = [("train_img_per_s", "Training, images/s", True), ("eval_img_per_s", "Evaluation, images/s", True),
           ("peak_rss_mib", "Peak RSS, MiB", False)]
NOT_AVAILABLE = "not available on this CPU"


def env_name(row):
    return row.replace("-", "_")


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""
rows: %s (default: all)
environment: ROWS, ROUNDS, STEPS, WARMUP, THREADS, TIMEOUT as the options; STEPS_<row>,
  WARMUP_<row>, ROUNDS_<row>, EVAL_BATCHES_<row> per row ('-' as '_': STEPS_resnet50_bf16); MIXREG_BIN
  (build/mixreg); TORCH1_PYTHON (/usr/bin/python3, Debian's PyTorch 1.13); TORCH2_PYTHON
  (bench/.venv/bin/python, PyTorch 2.x from PyPI); PEERS (comma list of torch1, torch2,
  torch2-compile; default all installed); MIXREG_FLAGS, PEER_FLAGS (extra flags).""" % ", ".join(ROWS))
    ap.add_argument("rows_pos", nargs="?", metavar="ROWS", help="comma-separated rows (as --rows)")
    ap.add_argument("rounds_pos", nargs="?", type=int, metavar="ROUNDS", help="rounds (as --rounds)")
    ap.add_argument("--rows", default=os.environ.get("ROWS"))
    ap.add_argument("--rounds", type=int, default=int(os.environ["ROUNDS"]) if os.environ.get("ROUNDS") else None,
                    help="rounds of every row (default 3; 2 for the resnet50 rows)")
    ap.add_argument("--steps", type=int, default=int(os.environ["STEPS"]) if os.environ.get("STEPS") else None,
                    help="timed steps of every row (default: each row's own)")
    ap.add_argument("--warmup", type=int, default=int(os.environ["WARMUP"]) if os.environ.get("WARMUP") else None)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("THREADS", "2")))
    ap.add_argument("--timeout", type=int, default=int(os.environ.get("TIMEOUT", "1800")),
                    help="seconds one process may take (default 1800)")
    ap.add_argument("--json", metavar="FILE", help="also write every record (JSON lines) to FILE")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    a = ap.parse_args(argv)
    rows = a.rows_pos or a.rows
    a.rows = rows.split(",") if rows else list(ROWS)
    for r in a.rows:
        if r not in ROWS:
            ap.error(f"unknown row '{r}' (rows: {', '.join(ROWS)})")
    if a.rounds_pos is not None:
        a.rounds = a.rounds_pos
    if (a.rounds is not None and a.rounds < 1) or a.threads < 1 or (a.steps is not None and a.steps < 1):
        ap.error("rounds, threads and steps must be at least 1")
    return a


def torch_version(python):
    """The version of PyTorch under this interpreter, or None (with why)."""
    if not (os.path.isfile(python) and os.access(python, os.X_OK)):
        return None, f"{python} not found"
    try:
        out = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                             text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{python}: {e}"
    if out.returncode != 0 or not out.stdout.strip():
        return None, f"{python} has no PyTorch"
    return out.stdout.strip().splitlines()[-1].split("+")[0], None


def find_peers(notes):
    """[(key, label, python, extra flags)] for the peers installed and wanted."""
    wanted = os.environ.get("PEERS", "torch1,torch2,torch2-compile").split(",")
    candidates = [("torch1", os.environ.get("TORCH1_PYTHON", "/usr/bin/python3"), False),
                  ("torch2", os.environ.get("TORCH2_PYTHON", "bench/.venv/bin/python"), False),
                  ("torch2-compile", os.environ.get("TORCH2_PYTHON", "bench/.venv/bin/python"), True)]
    peers, versions = [], {}
    for key, python, compile_ in candidates:
        if key not in wanted:
            continue
        if python not in versions:
            versions[python] = torch_version(python)
        version, why = versions[python]
        if version is None:
            notes.append(f"peer {key} skipped: {why}")
            continue
        major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
        if compile_ and major < 2:
            notes.append(f"peer {key} skipped: torch.compile needs PyTorch 2.x ({python} has {version})")
            continue
        label = f"PyTorch {version} " + ("+ compile" if compile_ else "eager")
        if any(p[1] == label for p in peers):
            notes.append(f"peer {key} skipped: the same PyTorch {version} as another peer")
            continue
        peers.append((key, label, python, ["--compile"] if compile_ else []))
    return peers


def row_setting(a, row, name, default):
    v = os.environ.get(f"{name.upper()}_{env_name(row)}")
    if v:
        return int(v)
    given = getattr(a, name, None)
    return given if given is not None else default


def commands(a, row, peers):
    """[(contender label, argv)] for one round of a row: mixreg first."""
    r = ROWS[row]
    steps = row_setting(a, row, "steps", r["steps"])
    warmup = row_setting(a, row, "warmup", r["warmup"])
    eval_batches = row_setting(a, row, "eval_batches", r.get("eval_batches", 8))
    common = ["--model", r["model"], "--threads", str(a.threads), "--batch", str(r["batch"]), "--steps", str(steps),
              "--warmup", str(warmup), "--eval-batches", str(eval_batches)]
    data = [] if r["data"] == "fashion-mnist" else ["--data", r["data"]]
    if "classes" in r:
        data += ["--classes", str(r["classes"])]
    mixreg = [os.environ.get("MIXREG_BIN", "build/mixreg"), "bench"] + common + data + \
        ["--precision", "bf16" if r["bf16"] else "fp32"] + shlex.split(os.environ.get("MIXREG_FLAGS", ""))
    out = [("mixreg", mixreg)]
    cnn = r["model"] != "mlp"
    for _, label, python, extra in peers:
        flags = (["--channels-last"] if cnn else []) + (["--bf16"] if r["bf16"] else []) + extra
        out.append((label, [python, PEER_SCRIPT] + common + data + flags +
                    shlex.split(os.environ.get("PEER_FLAGS", ""))))
    return out


def peak_command(a):
    """A tiny mixreg bench whose line carries the machine's peak rates."""
    return [os.environ.get("MIXREG_BIN", "build/mixreg"), "bench", "--model", "mlp", "--data", "synthetic:1x8x8",
            "--threads", str(a.threads), "--batch", "8", "--steps", "1", "--warmup", "0", "--eval-batches", "1",
            "--sgemm"]


def run_measured(argv, timeout):
    """(returncode, last stdout line, last stderr line, peak RSS in MiB) of one
    process; its whole session is killed past timeout (returncode None)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            p = subprocess.Popen(argv, stdout=out, stderr=err, start_new_session=True)
        except OSError as e:
            return 127, "", str(e), 0.0
        deadline = time.monotonic() + timeout
        try:
            while True:
                pid, status, usage = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    os.killpg(p.pid, signal.SIGKILL)
                    pid, status, usage = os.wait4(p.pid, 0)
                    status = None
                    break
                time.sleep(0.1)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): the contender's session goes too,
            # torch.compile's workers with it.
            os.killpg(p.pid, signal.SIGKILL)
            os.wait4(p.pid, 0)
            p.returncode = -1
            raise
        p.returncode = -1  # reaped here: Popen must not wait for it again
        # ru_maxrss (KiB): the largest of the process and its waited-for children.
        rss = usage.ru_maxrss / 1024
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.strip()]
        errs = [line for line in err.read().splitlines() if line.strip()]
        code = None if status is None else os.waitstatus_to_exitcode(status)
        return code, lines[-1] if lines else "", errs[-1] if errs else "", rss


def cpu_has_bf16_peer_kernels():
    """PyTorch's oneDNN bfloat16 convolutions need AVX-512 (BW, VL, DQ)."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return True
    return all(f in flags for f in ("avx512bw", "avx512vl", "avx512dq"))


def classify_failure(contender, row, code, err):
    bf16_line = any(w in err.lower() for w in ("bfloat16", "bf16", "avx512", "avx-512"))
    if ROWS[row]["bf16"] and bf16_line and (contender == "mixreg" or not cpu_has_bf16_peer_kernels()):
        return NOT_AVAILABLE
    return "timed out" if code is None else "failed"


def fmt(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def cell(values):
    if not values:
        return "", None
    med = statistics.median(values)
    spread = f" ({fmt(min(values))}-{fmt(max(values))})" if len(values) > 1 else ""
    return fmt(med) + spread, med


def report(a, peers, results, failures, peak, notes):
    labels = ["mixreg"] + [p[1] for p in peers]
    print(f"\n{a.threads} threads; medians of the rounds, (min-max) over them; ratio: mixreg's median / the best "
          f"peer's median, that peer named.")
    for key, title, higher_better in METRICS:
        print(f"\n### {title}\n")
        print("| row | " + " | ".join(labels) + " | mixreg / best peer |")
        print("|---|" + "---:|" * len(labels) + "---|")
        for row in a.rows:
            cells, meds = [], {}
            for label in labels:
                if (row, label) in failures:
                    cells.append(failures[(row, label)])
                    continue
                text, med = cell([rec[key] for rec in results.get((row, label), []) if key in rec])
                cells.append(text or "not run")
                if med is not None:
                    meds[label] = med
            peer_meds = {k: v for k, v in meds.items() if k != "mixreg"}
            ratio = "n/a"
            if "mixreg" in meds and peer_meds:
                best = (max if higher_better else min)(peer_meds, key=peer_meds.get)
                if peer_meds[best] > 0:
                    ratio = f"{meds['mixreg'] / peer_meds[best]:.2f}x vs {best.replace('PyTorch ', '')}"
            print(f"| {row} | " + " | ".join(cells) + f" | {ratio} |")

    sgemm = max((p.get("sgemm_gflops") or 0 for p in peak), default=0)
    bf16 = max((p.get("bf16_gflops") or 0 for p in peak), default=0)
    print("\n### GFLOP/s (2 per multiply-add of the convolutions and dense layers, mixreg's count "
          "applied to every contender; % of the peak)\n")
    print(f"Peak: fp32 {fmt(sgemm) if sgemm else 'n/a'} GFLOP/s (OpenBLAS SGEMM), bf16 "
          f"{fmt(bf16) + ' GFLOP/s (oneDNN bfloat16 kernels)' if bf16 else 'n/a (no bfloat16 kernels on this CPU)'}"
          f"; the best of {len(peak)} measurements.\n")
    print("| row | GFLOP/image train | GFLOP/image eval | mixreg train | mixreg eval | best peer train "
          "| best peer eval |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in a.rows:
        r = ROWS[row]
        counts = [rec for (rw, label), recs in results.items() for rec in recs
                  if label == "mixreg" and ROWS[rw]["model"] == r["model"] and ROWS[rw]["data"] == r["data"]]
        if not counts:
            print(f"| {row} | n/a | n/a | n/a | n/a | n/a | n/a |")
            continue
        per_img = {"train_img_per_s": counts[0]["gflop_per_image_train"],
                   "eval_img_per_s": counts[0]["gflop_per_image_eval"]}
        top = bf16 if r["bf16"] else sgemm

        def rate(label, key):
            recs = results.get((row, label), [])
            if not recs:
                return None
            return statistics.median(rec[key] for rec in recs) * per_img[key]

        def show(g):
            if g is None:
                return "n/a"
            return f"{fmt(g)} ({100 * g / top:.0f}%)" if top else f"{fmt(g)} (n/a)"

        out = [f"{per_img['train_img_per_s']:.4g}", f"{per_img['eval_img_per_s']:.4g}"]
        out += [show(rate("mixreg", "train_img_per_s")), show(rate("mixreg", "eval_img_per_s"))]
        for key in ("train_img_per_s", "eval_img_per_s"):
            rates = {p[1]: rate(p[1], key) for p in peers}
            rates = {k: v for k, v in rates.items() if v is not None}
            if rates:
                best = max(rates, key=rates.get)
                out.append(f"{show(rates[best])} {best.replace('PyTorch ', '')}")
            else:
                out.append("n/a")
        print(f"| {row} | " + " | ".join(out) + " |")
    if notes:
        print("\nNotes:")
        for n in notes:
            print(f"- {n}")


def main(argv):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    a = parse_args(argv)
    os.chdir(ROOT)
    notes = []
    peers = find_peers(notes)
    plan = []  # (row, round, label, argv), in running order
    for row in a.rows:
        for k in range(row_setting(a, row, "rounds", ROWS[row].get("rounds", 3))):
            for label, cmd in commands(a, row, peers):
                plan.append((row, k + 1, label, cmd))
    if a.dry_run:
        for n in notes:
            print(f"# {n}")
        print(f"# peak rates: {shlex.join(peak_command(a))}")
        for row, rnd, label, cmd in plan:
            print(f"# {row}, round {rnd}, {label}")
            print(shlex.join(cmd))
        print(f"# peak rates again: {shlex.join(peak_command(a))}")
        return 0
    if not os.access(os.environ.get("MIXREG_BIN", "build/mixreg"), os.X_OK):
        sys.exit("bench/run.sh: no mixreg binary (build it: cmake --build build, or set MIXREG_BIN)")
    sink = open(a.json, "w") if a.json else None
    peak = []

    def measure_peak():
        code, line, err, _ = run_measured(peak_command(a), a.timeout)
        try:
            peak.append(json.loads(line)) if code == 0 else notes.append(f"peak rates not measured: {err}")
        except ValueError:
            notes.append(f"peak rates not measured: {line}")

    started = time.monotonic()
    results, failures = {}, {}
    # torch.compile's cache of its own for the run: kept across the rounds, but
    # a file left half-written in a shared cache by a killed compilation (a
    # timeout, an interrupted run) cannot break a later run.
    cache = tempfile.TemporaryDirectory(prefix="mixreg-bench-inductor-")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", cache.name)
    try:
        measure_peak()
        run_plan(a, plan, results, failures, notes, sink)
        measure_peak()
    except (KeyboardInterrupt, SystemExit):
        # Stopped (Ctrl-C, SIGTERM): the tables of what was measured so far.
        notes.append("interrupted: the tables hold the rounds that had finished")
    notes.append(f"the whole run took {(time.monotonic() - started) / 60:.1f} min")
    report(a, peers, results, failures, peak, notes)
    return 0


def run_plan(a, plan, results, failures, notes, sink):
    skipped = set()
    for row, rnd, label, cmd in plan:
        if (row, label) in failures:
            continue  # failed in an earlier round: the same again
        if label != "mixreg" and failures.get((row, "mixreg")) == NOT_AVAILABLE:
            # No ratio can be formed, and a peer without the CPU's kernels
            # emulates them (PyTorch's bf16 resnet20 took 9 minutes a round).
            if row not in skipped:
                skipped.add(row)
                notes.append(f"{row}: the peers not run, as mixreg's precision is {NOT_AVAILABLE}")
            continue
        code, line, err, rss = run_measured(cmd, a.timeout)
        rec = None
        if code == 0:
            try:
                rec = json.loads(line)
            except ValueError:
                err = f"no JSON line: {line!r}"
        if rec is None:
            failures[(row, label)] = classify_failure(label, row, code, err)
            why = f"no result within {a.timeout} s" if code is None else err or f"exit status {code}"
            notes.append(f"{row}, {label}: {failures[(row, label)]} in round {rnd}: {why}")
            print(f"{row} round {rnd} {label}: {failures[(row, label)]}: {err}", file=sys.stderr, flush=True)
            continue
        rec.update(row=row, round=rnd, contender=label, peak_rss_mib=round(rss, 1))
        results.setdefault((row, label), []).append(rec)
        if sink:
            sink.write(json.dumps(rec) + "\n")
            sink.flush()
        print(f"{row} round {rnd} {label}: train {rec['train_img_per_s']} img/s, eval {rec['eval_img_per_s']} "
              f"img/s, {rec['peak_rss_mib']} MiB", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
