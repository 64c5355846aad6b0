//! The chain on the image: PID1 supervises `fluxnode chain`, here as a one-node devnet
//! (`fluxnode.chain.devnet=true`), and its JSON-RPC answers through a hostfwd port with a
//! block count that rises.

use std::time::{Duration, Instant};

use qemu_tests::{disk, ports, rpc, Artifacts, VmBuilder};

fn block_count(port: u16, within: Duration) -> u64 {
    let start = Instant::now();
    loop {
        if let Some(n) = rpc::block_count(port) {
            return n;
        }
        assert!(
            start.elapsed() < within,
            "no JSON-RPC answer on port {port}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn the_image_runs_a_devnet_whose_block_count_rises_through_hostfwd() {
    let a = Artifacts::locate().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let img = disk::copy_image(&a, dir.path(), None);
    let port = ports::free_ports(1).unwrap()[0];
    let mut vm = VmBuilder::from_artifacts(&a, None)
        .data_disk(&img)
        .cmdline_extra("fluxnode.bench.enabled=false fluxnode.chain.devnet=true fluxnode.chain.rpc_listen=0.0.0.0:16124")
        .forward(port, 16124)
        .spawn()
        .unwrap();
    vm.wait_for("fluxnode: ready", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    vm.wait_for("produced block 2", Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}\n{}", vm.tail(30)));
    let first = block_count(port, Duration::from_secs(60));
    let start = Instant::now();
    let mut now = first;
    while now <= first + 1 {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the block count stayed at {now}\n{}",
            vm.tail(30)
        );
        std::thread::sleep(Duration::from_secs(2));
        now = block_count(port, Duration::from_secs(30));
    }
    let info = rpc::result(port, "getinfo", serde_json::json!([])).unwrap();
    assert_eq!(info["chain"], "fluxnode-devnet");
    assert!(
        vm.serial_log().contains("service chain started"),
        "{}",
        vm.tail(30)
    );
}
