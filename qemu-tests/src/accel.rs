//! Which QEMU accelerator to use. KVM is used only after a probe boot under KVM really
//! reaches `fluxnode: ready` (on this kind of machine /dev/kvm exists but guests hang);
//! otherwise TCG. `FLUXNODE_ACCEL=kvm|tcg` skips the probe.

use std::fs::OpenOptions;
use std::sync::OnceLock;
use std::time::Duration;

use crate::vm::{Boot, VmBuilder};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn qemu_args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

fn probe(kernel: &std::path::Path, initrd: &std::path::Path) -> Accel {
    if OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Accel::Tcg;
    }
    let vm = VmBuilder::new(Boot::Direct {
        kernel: kernel.to_owned(),
        initrd: initrd.to_owned(),
    })
    .accel(Accel::Kvm)
    .cmdline_extra("fluxnode.selftest=poweroff")
    .timeout(PROBE_TIMEOUT)
    .spawn();
    let Ok(mut vm) = vm else {
        return Accel::Tcg;
    };
    if vm.wait_for("fluxnode: ready", PROBE_TIMEOUT).is_ok() {
        Accel::Kvm
    } else {
        Accel::Tcg
    }
}

static CHOSEN: OnceLock<Accel> = OnceLock::new();

/// The accelerator for this process, probed once.
pub fn detect(kernel: &std::path::Path, initrd: &std::path::Path) -> Accel {
    *CHOSEN.get_or_init(|| match std::env::var("FLUXNODE_ACCEL").as_deref() {
        Ok("kvm") => Accel::Kvm,
        Ok("tcg") => Accel::Tcg,
        _ => {
            let a = probe(kernel, initrd);
            eprintln!("qemu accelerator: {a:?} (probed; set FLUXNODE_ACCEL to skip)");
            a
        }
    })
}
