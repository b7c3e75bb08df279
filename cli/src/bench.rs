//! `sluice bench`: the channel benchmarks (crate `sluice-bench`) from the
//! command line — sluice's channel beside plain sockets doing the same
//! reads and writes, in one run.

use sluice_bench::{Contender, Net, Options, Sample, Workload};

use crate::{usage_err, Fail};

pub const USAGE: &str = "\
usage: sluice bench [--workloads W,..] [--nets tcp,unix] [--scale X] [--json]

Runs the channel benchmarks on loopback: each workload through sluice's
channel and through plain sockets doing the same reads and writes (the
physical limit), and prints the figures side by side with their ratio.

  --workloads W,..  recv64 (64-byte chunks received, msgs/s), recv64k (64 KiB
                    chunks, GB/s), send64 (64-byte chunks sent, msgs/s), rtt64
                    (round trip of a 64-byte chunk, p50/p99 µs), mixed (waves of
                    1,000 sessions of invoke + 10 chunks + choke, sessions/s);
                    default: all
  --nets tcp,unix   socket families (default: both)
  --scale X         multiplies every workload's size (default 1.0; 0.1 is quick)
  --json            one JSON sample per line instead of the table

`make bench` compares sluice from Rust/C, Python and Node with ZeroMQ and
pure-Python and pure-JS channels.";

fn list<T>(flag: &str, s: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Vec<T>, Fail> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| parse(x).ok_or_else(|| usage_err(format!("{flag}: unknown name '{x}'"))))
        .collect()
}

pub fn bench(args: &[String]) -> Result<(), Fail> {
    let mut opts = Options::default();
    let mut json = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or_else(|| usage_err(format!("{a} needs a value")));
        match a.as_str() {
            "--workloads" => opts.workloads = list(a, &val()?, Workload::parse)?,
            "--nets" => opts.nets = list(a, &val()?, Net::parse)?,
            "--scale" => {
                let v = val()?;
                opts.scale = v.parse().ok().filter(|x: &f64| *x > 0.0 && x.is_finite()).ok_or_else(|| usage_err(format!("bad --scale '{v}'")))?;
            }
            "--json" => json = true,
            other => return Err(usage_err(format!("unknown argument '{other}' (try 'sluice bench --help')"))),
        }
    }
    opts.contenders = vec![Contender::Plain, Contender::Sluice];
    if !json {
        println!("{:<8} {:<5} {:<10} {:>14} {:>14} {:>8}", "workload", "net", "metric", "plain", "sluice", "ratio");
    }
    for &w in &opts.workloads.clone() {
        for &net in &opts.nets.clone() {
            let one = Options { workloads: vec![w], nets: vec![net], ..opts.clone() };
            let samples = sluice_bench::run(&one);
            if json {
                for s in &samples {
                    println!("{}", s.to_json());
                }
                continue;
            }
            let metrics: Vec<&str> = samples.iter().map(|s| s.metric).fold(Vec::new(), |mut v, m| {
                if !v.contains(&m) {
                    v.push(m);
                }
                v
            });
            for m in metrics {
                let get = |c: &str| samples.iter().find(|s: &&Sample| s.contender == c && s.metric == m).map(|s| s.value);
                let (p, s) = (get("plain"), get("sluice-rust"));
                let fmt = |v: Option<f64>| v.map(|v| format!("{v:.3e}")).unwrap_or_else(|| "-".into());
                let ratio = match (p, s) {
                    (Some(p), Some(s)) if p > 0.0 => format!("{:.2}×", s / p),
                    _ => "-".into(),
                };
                println!("{:<8} {:<5} {:<10} {:>14} {:>14} {:>8}", w.name(), net.name(), m, fmt(p), fmt(s), ratio);
            }
        }
    }
    Ok(())
}
