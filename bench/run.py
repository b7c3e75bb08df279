"""`make bench`: sluice against the alternatives, side by side, in one run.

Runs every contender on every workload over TCP and Unix loopback, round
after round (each round runs each contender once per workload, so a change
in the machine's load touches them alike), then

* prints one table: the median of the rounds with min–max, and each
  contender's ratio to sluice of its own language measured in the same
  round (median of the per-round ratios);
* writes ``results.json`` (machine, versions, every sample), ``chart.png``
  (grouped bars per workload) and ``RESULTS.md`` (the table and the goals,
  met or not, with the figures) into ``--out``.

``--quick`` runs each workload once with small counts, writes into
``target/bench-quick`` and only checks that every contender produced every
figure (exit status 1 if one is missing).

    python bench/run.py [--rounds 5] [--quick] [--only sluice-rust,plain] [--out bench]

The contenders are programs: ``sluice-bench run`` (Rust: ``plain`` and
``sluice-rust``), ``bench/contenders.py`` (``sluice-py``, ``pure-py``,
``zmq``) and ``bench/contenders.js`` (``sluice-node``, ``pure-js``); each
run prints its samples as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

WORKLOADS = ["recv64", "recv64k", "send64", "rtt64", "mixed"]
NETS = ["tcp", "unix"]
TITLES = {
    "recv64": "receive 64 B chunks",
    "recv64k": "receive 64 KiB chunks",
    "send64": "send 64 B chunks",
    "rtt64": "round trip, 64 B chunk",
    "mixed": "worker load: 1,000 sessions × (invoke, 10 chunks, choke)",
}
# The headline metric of each workload (round trips also record p99_us).
METRIC = {"recv64": "msgs_per_s", "recv64k": "gb_per_s", "send64": "msgs_per_s", "rtt64": "p50_us", "mixed": "sessions_per_s"}
UNITS = {"msgs_per_s": "M msg/s", "gb_per_s": "GB/s", "p50_us": "µs p50", "p99_us": "µs p99", "sessions_per_s": "k sessions/s"}
SCALE = {"msgs_per_s": 1e-6, "gb_per_s": 1.0, "p50_us": 1.0, "p99_us": 1.0, "sessions_per_s": 1e-3}
LOWER_IS_BETTER = {"p50_us", "p99_us"}

# Contender -> (language, the sluice it is compared with, label)
CONTENDERS = {
    "plain": ("rust", "sluice-rust", "plain sockets"),
    "sluice-rust": ("rust", "sluice-rust", "sluice Rust/C"),
    "sluice-py": ("python", "sluice-py", "sluice Python"),
    "sluice-py-batch": ("python", "sluice-py", "sluice Python, on_chunks"),
    "pure-py": ("python", "sluice-py", "pure Python: socket + msgpack"),
    "zmq-c": ("native", "sluice-rust", "ZeroMQ (libzmq, C)"),
    "zmq": ("python", "sluice-py", "ZeroMQ (pyzmq)"),
    "sluice-node": ("node", "sluice-node", "sluice Node"),
    "pure-js": ("node", "sluice-node", "pure JS: net.Socket + msgpackr"),
}
# Messages (round trips, waves of 1,000 sessions) per run.
COUNTS = {
    "rust": {"recv64": 4_000_000, "recv64k": 20_000, "send64": 4_000_000, "rtt64": 20_000, "mixed": 20},
    "python": {"recv64": 1_000_000, "recv64k": 10_000, "send64": 1_000_000, "rtt64": 5_000, "mixed": 5},
    "node": {"recv64": 1_000_000, "recv64k": 10_000, "send64": 1_000_000, "rtt64": 5_000, "mixed": 5},
}
# pyzmq moves a few hundred thousand small messages a second here.
ZMQ_COUNTS = {"recv64": 300_000, "recv64k": 10_000, "send64": 300_000, "rtt64": 5_000}
ZMQ_C_COUNTS = {"recv64": 1_000_000, "recv64k": 10_000, "send64": 1_000_000, "rtt64": 5_000}
QUICK_DIVISOR = 20


def applies(contender: str, workload: str) -> bool:
    """ZeroMQ has no sessions: no worker load."""
    if contender == "sluice-py-batch":
        return workload in ("recv64", "recv64k")
    return not (contender in ("zmq", "zmq-c") and workload == "mixed")


def count_for(contender: str, workload: str, quick: bool) -> int:
    lang = CONTENDERS[contender][0]
    if contender == "zmq":
        n = ZMQ_COUNTS[workload]
    elif contender == "zmq-c":
        n = ZMQ_C_COUNTS[workload]
    else:
        n = COUNTS[lang][workload]
    if quick:
        n = max(1, n // QUICK_DIVISOR) if workload == "mixed" else max(200, n // QUICK_DIVISOR)
    return n


class Tools:
    def __init__(self, peer: str, python: str, node: str, zmq_native: str) -> None:
        self.peer, self.python, self.node, self.zmq_native = peer, python, node, zmq_native

    def argv(self, contender: str, workload: str, net: str, n: int) -> List[str]:
        lang = CONTENDERS[contender][0]
        if lang == "rust":
            return [self.peer, "run", "--workloads", workload, "--nets", net, "--contenders", contender, "--count", str(n)]
        if lang == "native":
            return [self.zmq_native, workload, net, str(n)]
        if lang == "python":
            return [self.python, os.path.join(HERE, "contenders.py"), contender, workload, net, str(n), "--peer", self.peer]
        return [self.node, os.path.join(HERE, "contenders.js"), contender, workload, net, str(n), "--peer", self.peer]


def run_one(tools: Tools, contender: str, workload: str, net: str, n: int) -> Tuple[List[dict], Optional[str]]:
    argv = tools.argv(contender, workload, net, n)
    # Its own process group: a run that hangs is ended with every process
    # it started (they would hold the output pipes open).
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = p.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return [], "timed out after 300 s"
    finally:
        # Anything of the group still alive after the run (a peer left behind).
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    samples = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            samples.append(json.loads(line))
    if p.returncode != 0 or not samples:
        return samples, f"exit {p.returncode}: {stderr.strip()[-600:]}"
    return samples, None


def cmd_version(argv: List[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except Exception as e:  # noqa: BLE001 - a missing tool is reported, not fatal
        return f"unknown ({e})"


def machine() -> dict:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = 0
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"cpu": model, "cpus": os.cpu_count(), "memory_bytes": mem, "kernel": platform.release(),
            "system": platform.system(), "machine": platform.machine()}


def versions(tools: Tools) -> dict:
    v = {"rustc": cmd_version(["rustc", "--version"]), "node": cmd_version([tools.node, "--version"]),
         "python": cmd_version([tools.python, "--version"])}
    probe = ("import json, sluice, msgpack, zmq\n"
             "d = {'sluice_py': sluice.__version__, 'msgpack': '.'.join(map(str, msgpack.version)),"
             " 'pyzmq': zmq.__version__, 'libzmq': zmq.zmq_version()}\n"
             "try:\n import matplotlib; d['matplotlib'] = matplotlib.__version__\n"
             "except ImportError: pass\nprint(json.dumps(d))")
    v["zmq_native"] = cmd_version([tools.zmq_native, "--version"])
    try:
        v.update(json.loads(subprocess.run([tools.python, "-c", probe], capture_output=True, text=True, timeout=60).stdout))
    except (ValueError, subprocess.TimeoutExpired):
        pass
    for name, rel in (("msgpackr", "bindings/node/node_modules/msgpackr/package.json"), ("sluice_node", "bindings/node/package.json")):
        try:
            with open(os.path.join(ROOT, rel)) as f:
                v[name] = json.load(f)["version"]
        except (OSError, ValueError, KeyError):
            v[name] = "unknown"
    return v


# ---------------------------------------------------------------------------
# Summaries


def by_key(samples: List[dict]) -> Dict[tuple, Dict[int, float]]:
    """(contender, workload, net, metric) -> {round: value}."""
    out: Dict[tuple, Dict[int, float]] = {}
    for s in samples:
        out.setdefault((s["contender"], s["workload"], s["net"], s["metric"]), {})[s["round"]] = s["value"]
    return out


def summary(samples: List[dict]) -> Dict[tuple, dict]:
    """Median, min, max and the median per-round ratio to the reference sluice."""
    keyed = by_key(samples)
    out = {}
    for key, rounds in keyed.items():
        contender, workload, net, metric = key
        vals = list(rounds.values())
        ref = keyed.get((CONTENDERS[contender][1], workload, net, metric), {})
        ratios = [v / ref[r] for r, v in rounds.items() if r in ref and ref[r]]
        out[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals),
                    "ratio": statistics.median(ratios) if ratios else None}
    return out


def cross_ratio(samples: List[dict], a: str, b: str, workload: str, net: str, metric: str) -> Optional[float]:
    """Median over rounds of value(a) / value(b) measured in the same round."""
    keyed = by_key(samples)
    ra, rb = keyed.get((a, workload, net, metric), {}), keyed.get((b, workload, net, metric), {})
    ratios = [ra[r] / rb[r] for r in ra if r in rb and rb[r]]
    return statistics.median(ratios) if ratios else None


def fmt(metric: str, v: float) -> str:
    x = v * SCALE[metric]
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def table_rows(summ: Dict[tuple, dict], contenders: List[str]) -> List[List[str]]:
    rows = []
    for w in WORKLOADS:
        metrics = ["p50_us", "p99_us"] if w == "rtt64" else [METRIC[w]]
        for net in NETS:
            for m in metrics:
                for c in contenders:
                    s = summ.get((c, w, net, m))
                    if s is None:
                        continue
                    ratio = "—" if c == CONTENDERS[c][1] else (f"{s['ratio']:.2f}×" if s["ratio"] is not None else "?")
                    rows.append([w, net, CONTENDERS[c][2], f"{fmt(m, s['median'])} {UNITS[m]}",
                                 f"{fmt(m, s['min'])}–{fmt(m, s['max'])}", ratio])
    return rows


HEADER = ["workload", "net", "contender", "median", "min–max", "÷ sluice"]


def text_table(rows: List[List[str]]) -> str:
    widths = [max(len(r[i]) for r in rows + [HEADER]) for i in range(len(HEADER))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths))]
    last = None
    for r in rows:
        if last and (r[0], r[1]) != last:
            lines.append("")
        last = (r[0], r[1])
        lines.append("  ".join((c.rjust(w) if i >= 3 else c.ljust(w)) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def md_table(rows: List[List[str]]) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * 3) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def goals(samples: List[dict], summ: Dict[tuple, dict]) -> List[dict]:
    """The goals of the benchmark, per socket family, with the figures."""
    out = []

    def med(c: str, w: str, net: str, m: str) -> Optional[float]:
        s = summ.get((c, w, net, m))
        return s["median"] if s else None

    for net in NETS:
        def ratio_goal(name: str, a: str, b: str, w: str, m: str, want: float, higher: bool = True) -> None:
            r = cross_ratio(samples, a, b, w, net, m)
            if r is None:
                out.append({"goal": name, "net": net, "met": None, "figure": "not measured"})
                return
            ok = r >= want if higher else r <= want
            fa, fb = med(a, w, net, m), med(b, w, net, m)
            out.append({"goal": name, "net": net, "met": ok, "ratio": r, "want": want,
                        "figure": f"{r:.2f}× ({CONTENDERS[a][2]} {fmt(m, fa)} vs {CONTENDERS[b][2]} {fmt(m, fb)} {UNITS[m]})"})

        def abs_goal(name: str, c: str, w: str, m: str, want: float) -> None:
            v = med(c, w, net, m)
            if v is None:
                out.append({"goal": name, "net": net, "met": None, "figure": "not measured"})
                return
            out.append({"goal": name, "net": net, "met": v >= want, "value": v, "want": want,
                        "figure": f"{fmt(m, v)} {UNITS[m]}"})

        ratio_goal("sluice Rust/C small messages ≥ 0.7× plain sockets", "sluice-rust", "plain", "recv64", "msgs_per_s", 0.7)
        ratio_goal("sluice Rust/C bulk ≥ 0.95× plain sockets", "sluice-rust", "plain", "recv64k", "gb_per_s", 0.95)
        ratio_goal("sluice Rust/C p50 round trip ≤ 1.3× plain sockets", "sluice-rust", "plain", "rtt64", "p50_us", 1.3, higher=False)
        zmq = "zmq-c" if any(k[0] == "zmq-c" for k in summ) else "zmq"
        ratio_goal("sluice Rust/C small messages ≥ 10× ZeroMQ", "sluice-rust", zmq, "recv64", "msgs_per_s", 10)
        ratio_goal("sluice Node small messages ≥ 2.5× net.Socket + msgpackr", "sluice-node", "pure-js", "recv64", "msgs_per_s", 2.5)
        abs_goal("sluice Node bulk ≥ 2 GB/s", "sluice-node", "recv64k", "gb_per_s", 2.0)
        ratio_goal("sluice Python small messages ≥ 2× msgpack.Unpacker channel", "sluice-py", "pure-py", "recv64", "msgs_per_s", 2)
        ratio_goal("sluice Python bulk ≥ 1× msgpack.Unpacker channel", "sluice-py", "pure-py", "recv64k", "gb_per_s", 1)
    return out


def chart(summ: Dict[tuple, dict], contenders: List[str], path: str, subtitle: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return False
    panels = [("recv64", "msgs_per_s", True), ("recv64k", "gb_per_s", False), ("send64", "msgs_per_s", True),
              ("rtt64", "p50_us", True), ("mixed", "sessions_per_s", True)]
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    colors = {"plain": "#7f7f7f", "sluice-rust": "#d62728", "sluice-py": "#1f77b4", "sluice-py-batch": "#6baed6",
              "pure-py": "#c6dbef",
              "zmq": "#ff7f0e", "zmq-c": "#fdae6b", "sluice-node": "#2ca02c", "pure-js": "#a1d99b"}
    for ax, (w, m, log) in zip(axes.flat, panels):
        present = [c for c in contenders if any((c, w, n, m) in summ for n in NETS)]
        width = 0.8 / max(1, len(present))
        for i, c in enumerate(present):
            xs, ys, lo, hi = [], [], [], []
            for j, net in enumerate(NETS):
                s = summ.get((c, w, net, m))
                if s is None:
                    continue
                k = SCALE[m]
                xs.append(j + (i - (len(present) - 1) / 2) * width)
                ys.append(s["median"] * k)
                lo.append((s["median"] - s["min"]) * k)
                hi.append((s["max"] - s["median"]) * k)
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, color=colors.get(c), label=CONTENDERS[c][2],
                   edgecolor="black", linewidth=0.4)
        ax.set_xticks(range(len(NETS)))
        ax.set_xticklabels([n.upper() if n == "tcp" else "Unix" for n in NETS])
        ax.set_title(TITLES[w], fontsize=10)
        ax.set_ylabel(UNITS[m] + (" (lower is better)" if m in LOWER_IS_BETTER else ""))
        if log:
            ax.set_yscale("log")
            plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
            ax.yaxis.set_major_formatter(plain)
            # Within one decade the minor ticks are the only labels there are.
            if ax.get_ylim()[1] / max(ax.get_ylim()[0], 1e-12) < 20:
                ax.yaxis.set_minor_formatter(plain)
            else:
                ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.grid(axis="y", alpha=0.3, which="both")
    legend_ax = axes.flat[-1]
    legend_ax.axis("off")
    handles, labels = [], []
    for ax in axes.flat[:-1]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    legend_ax.legend(handles, labels, loc="center", fontsize=11, title="contender (median, bars: min–max)")
    fig.suptitle(f"sluice against the alternatives — {subtitle}", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def results_md(doc: dict, rows: List[List[str]], goal_list: List[dict], notes: str) -> str:
    m, v = doc["machine"], doc["versions"]
    load = doc["load"]
    lines = [
        "# sluice benchmark results",
        "",
        "Generated by `make bench` (`bench/run.py`); every sample is in `results.json`, the chart is `chart.png`.",
        "",
        "![chart](chart.png)",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_bytes'] / 2**30:.0f} GiB, Linux {m['kernel']}. "
        f"Load average {load['before'][0]:.2f} before the run and {load['after'][0]:.2f} after: "
        + ("**the machine was shared with other work during this run**, so the figures are lower and more "
           "spread than on an idle machine; ratios within a round are the fairer reading. "
           if max(load["before"][0], load["after"][0]) > 1.0 else "")
        + f"{doc['config']['rounds']} rounds; each round runs every contender once per workload and socket family.",
        "",
        "Versions: " + ", ".join(val if str(val).lower().startswith(k.split("_")[0]) else f"{k} {val}"
                                 for k, val in v.items()) + ".",
        "",
        "Messages per run: " + "; ".join(f"{lang}: " + ", ".join(f"{w} {n:,}" for w, n in c.items())
                                         for lang, c in doc["config"]["counts"].items()) + ".",
        "",
        "## Table",
        "",
        "Medians over the rounds with min–max. `÷ sluice`: the contender's figure divided by the sluice of its "
        "language (plain sockets by sluice Rust/C, the Python channels by sluice Python, the JS channel by sluice "
        "Node) measured in the same round, median over rounds: below 1 a throughput is lower than sluice's, above "
        "1 a round trip is slower.",
        "",
        md_table(rows),
        "",
        "## Goals",
        "",
        "| goal | net | met | figure (median of same-round ratios) |",
        "|---|---|---|---|",
    ]
    for g in goal_list:
        met = "n/a" if g["met"] is None else ("met" if g["met"] else "**not met**")
        lines.append(f"| {g['goal']} | {g['net']} | {met} | {g['figure']} |")
    lines += ["", "## How the workloads run", "",
              "* Receive: the `sluice-bench feed` peer (Rust, plain socket) writes the invoke `[7, 0, [\"bench\"]]` "
              "then `[7, 0, [<bin payload>]]` frames in 1 MiB writes; the contender connects, and the clock runs "
              "from the connect call to its handler getting the last chunk. Plain sockets only count bytes in 256 KiB reads.",
              "* Send: the contender sends `[7, 0, [<64-byte bin>]]` (sluice: `send_chunk`/`sendChunk` per message; the "
              "pure channels pack each frame and write in 256 KiB batches; plain sockets write the pre-encoded bytes) to a "
              "`sluice-bench sink` that reads until it has every byte, then closes; the clock stops at that close.",
              "* Round trip: one 64-byte chunk at a time to an echo of the same kind (sluice to a sluice server, "
              "plain to a plain echo, pyzmq REQ to REP, ...), after 200 unmeasured ones.",
              "* Worker load: the `sluice-bench engine` peer opens waves of 1,000 sessions (1,000 invokes, then 10 "
              "rounds of a 64-byte chunk per session, then 1,000 chokes) while reading the replies; the worker echoes "
              "every chunk and answers every choke; sessions/s by the engine's clock, to the last choke back. Plain "
              "sockets echo every byte.",
              "* ZeroMQ: PUSH/PULL for the streaming workloads (each message is the bare payload: ZeroMQ frames it "
              "itself), REQ/REP for round trips; no sessions, so no worker load. `ZeroMQ (pyzmq)`: two pyzmq "
              "processes. `ZeroMQ (libzmq, C)`: `bench/zmq_native.c`, the same libzmq (the one pyzmq bundles) from C, "
              "the other side in a second thread; its ratio is to sluice Rust/C.",
              ""]
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def report(doc: dict, out_dir: str) -> Dict[tuple, dict]:
    """Prints the table and the goals of a run and writes results.json
    (with the summary and goals added), chart.png and RESULTS.md."""
    samples, contenders = doc["samples"], doc["config"]["contenders"]
    summ = summary(samples)
    rows = table_rows(summ, contenders)
    print()
    print(text_table(rows) if rows else "no figures")
    goal_list = goals(samples, summ)
    print()
    for g in goal_list:
        met = "n/a" if g["met"] is None else ("met" if g["met"] else "NOT MET")
        print(f"{met:>7}  {g['goal']} [{g['net']}]: {g['figure']}")
    doc["summary"] = [dict(zip(("contender", "workload", "net", "metric"), k), **v) for k, v in sorted(summ.items())]
    doc["goals"] = goal_list
    # The samples last: the rest of the file reads first.
    doc["samples"] = doc.pop("samples")
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    rounds, load = doc["config"]["rounds"], doc["load"]["before"][0]
    subtitle = f"{doc['machine']['cpus']} CPUs, loopback, median of {rounds} round(s), load average {load:.1f}"
    chart(summ, contenders, os.path.join(out_dir, "chart.png"), subtitle)
    notes = ""
    notes_path = os.path.join(HERE, "NOTES.md")
    if os.path.exists(notes_path) and not doc["config"]["quick"]:
        with open(notes_path) as f:
            notes = f.read()
    with open(os.path.join(out_dir, "RESULTS.md"), "w") as f:
        f.write(results_md(doc, rows, goal_list, notes))
    return summ


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one small round; check that every figure is there")
    ap.add_argument("--only", help="comma-separated contenders (default: all)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--out", help="output folder (default: bench/, or target/bench-quick with --quick)")
    ap.add_argument("--render", metavar="RESULTS_JSON", help="only render the table, chart and RESULTS.md of a saved run")
    ap.add_argument("--peer", default=os.path.join(ROOT, "target", "release", "sluice-bench"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--node", default="node")
    ap.add_argument("--zmq-native", default=os.path.join(ROOT, "target", "bench", "zmq-native"),
                    help="bench/zmq_native.c built against pyzmq's libzmq (mk/bench.mk)")
    a = ap.parse_args()
    rounds = 1 if a.quick else a.rounds
    out_dir = a.out or (os.path.join(ROOT, "target", "bench-quick") if a.quick else HERE)
    os.makedirs(out_dir, exist_ok=True)
    if a.render:
        with open(a.render) as f:
            doc = json.load(f)
        report(doc, a.out or os.path.dirname(os.path.abspath(a.render)))
        return 0
    contenders = a.only.split(",") if a.only else list(CONTENDERS)
    workloads = a.workloads.split(",")
    for c in contenders:
        if c not in CONTENDERS:
            ap.error(f"unknown contender {c}")
    if not os.access(a.peer, os.X_OK):
        ap.error(f"{a.peer} is missing: cargo build --release -p sluice-bench")
    if "zmq-c" in contenders and not os.access(a.zmq_native, os.X_OK):
        print(f"{a.zmq_native} is missing: no native ZeroMQ figures", file=sys.stderr)
        contenders.remove("zmq-c")
    tools = Tools(a.peer, a.python, a.node, a.zmq_native)

    load_before = os.getloadavg()
    started = time.time()
    samples: List[dict] = []
    failures: List[str] = []
    counts = {lang: {w: count_for(next(c for c in CONTENDERS if CONTENDERS[c][0] == lang), w, a.quick) for w in workloads}
              for lang in ("rust", "python", "node")}
    counts["zmq"] = {w: count_for("zmq", w, a.quick) for w in workloads if applies("zmq", w)}
    counts["zmq-c"] = {w: count_for("zmq-c", w, a.quick) for w in workloads if applies("zmq-c", w)}
    print(f"sluice benchmark: {len(contenders)} contenders, {len(workloads)} workloads × {len(NETS)} socket families, "
          f"{rounds} round(s){' (quick)' if a.quick else ''}", flush=True)
    for r in range(rounds):
        t_round = time.time()
        for w in workloads:
            for net in NETS:
                for c in contenders:
                    if not applies(c, w):
                        continue
                    got, err = run_one(tools, c, w, net, count_for(c, w, a.quick))
                    for s in got:
                        s["round"] = r
                    samples += got
                    if err:
                        failures.append(f"{c} {w} {net}: {err}")
                        print(f"  FAILED {c} {w} {net}: {err}", file=sys.stderr, flush=True)
        print(f"  round {r + 1}/{rounds} done in {time.time() - t_round:.0f} s", flush=True)
    load_after = os.getloadavg()

    doc = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_seconds": round(time.time() - started, 1),
        "machine": machine(),
        "load": {"before": list(load_before), "after": list(load_after)},
        "versions": versions(tools),
        "config": {"rounds": rounds, "quick": a.quick, "contenders": contenders, "workloads": workloads, "nets": NETS,
                   "counts": counts},
        "failures": failures,
        "samples": samples,
    }
    summ = report(doc, out_dir)
    print(f"\nwrote {out_dir}/results.json, chart.png, RESULTS.md in {time.time() - started:.0f} s")

    # Every contender must have produced every figure of every workload it runs.
    missing = []
    for c in contenders:
        for w in workloads:
            if not applies(c, w):
                continue
            for net in NETS:
                for m in (["p50_us", "p99_us"] if w == "rtt64" else [METRIC[w]]):
                    if (c, w, net, m) not in summ:
                        missing.append(f"{c} {w} {net} {m}")
    if missing or failures:
        print("missing figures: " + ", ".join(missing) if missing else "", file=sys.stderr)
        for fl in failures:
            print("failed: " + fl, file=sys.stderr)
        return 1
    print(f"{len(summ)} figures from {len(contenders)} contenders: all present")
    return 0


if __name__ == "__main__":
    sys.exit(main())
