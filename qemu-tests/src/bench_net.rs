//! `fluxnode-vm bench-net`: what app networking costs, in one VM run. The same small
//! server (`net_bench`, static C from qemu-tests/probe) runs in a container behind a
//! published port and directly on the node; a client on the node measures TCP bulk
//! throughput and the rate of short connections to each, through the node's own address,
//! in interleaved rounds. Prints every figure, the medians and the ratios (published over
//! direct).

use std::time::Duration;

use anyhow::{bail, Result};

use crate::appnode::{build_probe, AppNode};
use crate::{disk, ports};

const SCRIPT: &str = r#"
N=/data/bench/net_bench
$N serve 9001 > /dev/null 2>&1 &
run srv --cpu 1 --ram 64M --restart always --port 9000:9000 -- /bin/net_bench serve 9000
$B sleep 5
for r in $($B seq 1 ROUNDS); do
  echo "published $($N bulk 10.0.2.15 9000 SECS)" >> $R/net.txt
  echo "direct $($N bulk 10.0.2.15 9001 SECS)" >> $R/net.txt
  echo "direct $($N conns 10.0.2.15 9001 SECS)" >> $R/net.txt
  echo "published $($N conns 10.0.2.15 9000 SECS)" >> $R/net.txt
done
echo "exit=0" >> $R/net.txt
$F ctl shutdown
"#;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs `rounds` rounds of `secs` seconds per measure; returns the report.
pub fn run(rounds: usize, secs: u32) -> Result<String> {
    let build = tempfile::tempdir()?;
    let bench = build_probe("net_bench", build.path());
    let script = SCRIPT
        .replace("ROUNDS", &rounds.to_string())
        .replace("SECS", &secs.to_string());
    let n = AppNode::with(&script, None, &[(&bench, "/bin/net_bench")]);
    disk::put_host_files(&n.img, &["/bench"], &[(&bench, "/bench/net_bench")]);
    let port = ports::free_ports(1)?[0];
    let mut vm = n
        .boot("")
        .forward(port, 9000)
        .timeout(Duration::from_secs(3600))
        .spawn()?;
    let status = vm.wait_exit(Duration::from_secs(3600))?;
    if !status.success() {
        bail!("qemu: {status}\n{}", vm.tail(40));
    }
    let raw = n.result("net.txt");
    if !raw.contains("exit=0") {
        bail!("the guest did not finish:\n{raw}\n{}", vm.tail(40));
    }
    let pick = |path: &str, what: &str| -> Vec<f64> {
        raw.lines()
            .filter(|l| l.starts_with(path) && l.contains(what))
            .filter_map(|l| l.split_whitespace().last()?.parse().ok())
            .collect()
    };
    let mut out = format!("{raw}\n");
    for (what, unit) in [("bulk", "MB/s"), ("conns", "connections/s")] {
        let (p, d) = (
            median(pick("published", what)),
            median(pick("direct", what)),
        );
        out.push_str(&format!(
            "{what:<6} published {p:>9.1} {unit}  direct {d:>9.1} {unit}  ratio {:.2}\n",
            p / d
        ));
    }
    Ok(out)
}
