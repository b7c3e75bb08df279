//! `sluice bench`: the channel benchmarks (crate `sluice-bench`) from the
//! command line — sluice's channel beside plain sockets doing the same
//! reads and writes, in one run.

use sluice_bench::{measure, Contender, Net, Options, Sample, Workload};

use crate::{usage_err, Fail};

pub const USAGE: &str = "\
usage: sluice bench [--workloads W,..] [--nets tcp,unix] [--scale X] [--rounds N] [--json]

Runs the channel benchmarks on loopback: each workload through sluice's
channel and through plain sockets doing the same reads and writes (the
physical limit), and prints the figures side by side with their ratio.
Every workload runs N rounds, plain and sluice in turn (which goes first
alternates); the table gives the medians, the ratio of the medians and the
lowest and highest ratio of a single round.

  --workloads W,..  recv64 (64-byte chunks received, msgs/s), recv64k (64 KiB
                    chunks, GB/s), send64 (64-byte chunks sent, msgs/s), rtt64
                    (round trip of a 64-byte chunk, p50/p99 µs), mixed (waves of
                    1,000 sessions of invoke + 10 chunks + choke, sessions/s);
                    default: all. recv64, recv64k and send64 also give the
                    CPU time the receiving or sending side spent per message
                    (cpu_ns_per_msg), which depends far less on the machine's
                    load than the rates do. For µs and ns, lower is better.
  --nets tcp,unix   socket families (default: both)
  --scale X         multiplies every workload's size (default 1.0; 0.1 is quick)
  --rounds N        rounds per workload and family (default 5)
  --json            every round's samples, one JSON object per line, instead
                    of the table

`make bench` compares sluice from Rust/C, Python and Node with ZeroMQ and
pure-Python and pure-JS channels.";

fn list<T>(flag: &str, s: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, Fail> {
    s.split(',').filter(|x| !x.is_empty()).map(|x| parse(x).ok_or_else(|| usage_err(format!("{flag}: unknown name '{x}'")))).collect()
}

/// The median of `v` (the mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn bench(args: &[String]) -> Result<(), Fail> {
    let mut opts = Options::default();
    let mut json = false;
    let mut rounds = 5usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| usage_err(format!("{a} needs a value")));
        match a.as_str() {
            "--workloads" => opts.workloads = list(a, &val()?, Workload::parse)?,
            "--nets" => opts.nets = list(a, &val()?, Net::parse)?,
            "--scale" => {
                let v = val()?;
                opts.scale =
                    v.parse().ok().filter(|x: &f64| *x > 0.0 && x.is_finite()).ok_or_else(|| usage_err(format!("bad --scale '{v}'")))?;
            }
            "--rounds" => {
                let v = val()?;
                rounds = v.parse().ok().filter(|&n: &usize| n > 0).ok_or_else(|| usage_err(format!("bad --rounds '{v}'")))?;
            }
            "--json" => json = true,
            other => return Err(usage_err(format!("unknown argument '{other}' (try 'sluice bench --help')"))),
        }
    }
    if !json {
        println!("{:<8} {:<5} {:<14} {:>12} {:>12} {:>7} {:>13}", "workload", "net", "metric", "plain", "sluice", "ratio", "round ratios");
    }
    for &w in &opts.workloads {
        let n = w.count(opts.scale);
        for &net in &opts.nets {
            // Every round's samples, plain and sluice in turn.
            let mut samples: Vec<(usize, Sample)> = Vec::new();
            for r in 0..rounds {
                let order = if r % 2 == 0 { [Contender::Plain, Contender::Sluice] } else { [Contender::Sluice, Contender::Plain] };
                for c in order {
                    for s in measure(c, w, net, n) {
                        if json {
                            println!("{}", s.to_json());
                        }
                        samples.push((r, s));
                    }
                }
            }
            if json {
                continue;
            }
            let metrics: Vec<&str> = samples.iter().map(|(_, s)| s.metric).fold(Vec::new(), |mut v, m| {
                if !v.contains(&m) {
                    v.push(m);
                }
                v
            });
            for m in metrics {
                let values = |c: &str| -> Vec<f64> {
                    samples.iter().filter(|(_, s)| s.contender == c && s.metric == m).map(|(_, s)| s.value).collect()
                };
                let (p, s) = (median(values(Contender::Plain.name())), median(values(Contender::Sluice.name())));
                let per_round: Vec<f64> = (0..rounds)
                    .filter_map(|r| {
                        let get =
                            |c: &str| samples.iter().find(|(k, x)| *k == r && x.contender == c && x.metric == m).map(|(_, x)| x.value);
                        match (get(Contender::Plain.name()), get(Contender::Sluice.name())) {
                            (Some(p), Some(s)) if p > 0.0 => Some(s / p),
                            _ => None,
                        }
                    })
                    .collect();
                let ratio = if p > 0.0 { format!("{:.2}×", s / p) } else { "-".into() };
                let range = match (per_round.iter().copied().reduce(f64::min), per_round.iter().copied().reduce(f64::max)) {
                    (Some(lo), Some(hi)) => format!("{lo:.2}–{hi:.2}"),
                    _ => "-".into(),
                };
                println!("{:<8} {:<5} {:<14} {:>12.3e} {:>12.3e} {:>7} {:>13}", w.name(), net.name(), m, p, s, ratio, range);
            }
        }
    }
    Ok(())
}
