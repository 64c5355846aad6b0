//! The machine's shape: CPU model, physical cores and threads (from sysfs topology),
//! architecture, virtualization when the kernel or firmware says, and a fingerprint that
//! changes when the hardware does (so PID1 knows when to benchmark again).

use std::collections::BTreeSet;
use std::fs;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    pub cpu_model: String,
    pub cores: usize,
    pub threads: usize,
    pub arch: String,
    pub virtualization: Option<String>,
}

/// The `model name` of /proc/cpuinfo text.
pub fn cpu_model(cpuinfo: &str) -> String {
    cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Physical cores: distinct (package, core) pairs among online CPUs.
fn cores() -> Option<usize> {
    let mut seen = BTreeSet::new();
    for entry in fs::read_dir("/sys/devices/system/cpu").ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("cpu")
            || !name[3..].bytes().all(|b| b.is_ascii_digit())
            || name.len() == 3
        {
            continue;
        }
        let topo = entry.path().join("topology");
        let pkg = fs::read_to_string(topo.join("physical_package_id")).ok()?;
        let core = fs::read_to_string(topo.join("core_id")).ok()?;
        seen.insert((pkg.trim().to_owned(), core.trim().to_owned()));
    }
    (!seen.is_empty()).then_some(seen.len())
}

/// The hypervisor's CPUID vendor signature (leaf 0x40000000), when the CPU says it runs
/// under one.
#[cfg(target_arch = "x86_64")]
fn cpuid_hypervisor() -> Option<String> {
    use std::arch::x86_64::__cpuid;
    let leaf1 = __cpuid(1);
    if leaf1.ecx & (1 << 31) == 0 {
        return None;
    }
    // Leaf 0x40000000 is reserved for hypervisors.
    let r = __cpuid(0x4000_0000);
    let bytes: Vec<u8> = [r.ebx, r.ecx, r.edx]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let sig = String::from_utf8_lossy(&bytes)
        .trim_matches(char::from(0))
        .trim()
        .to_owned();
    let name = match sig.as_str() {
        "KVMKVMKVM" => "kvm",
        "TCGTCGTCGTCG" => "qemu-tcg",
        "Microsoft Hv" => "hyperv",
        "VMwareVMware" => "vmware",
        "XenVMMXenVMM" => "xen",
        "VBoxVBoxVBox" => "virtualbox",
        "" => "unknown hypervisor",
        other => other,
    };
    Some(name.to_owned())
}

#[cfg(not(target_arch = "x86_64"))]
fn cpuid_hypervisor() -> Option<String> {
    None
}

fn virtualization(cpuinfo: &str) -> Option<String> {
    if let Some(v) = cpuid_hypervisor() {
        return Some(v);
    }
    if let Ok(t) = fs::read_to_string("/sys/hypervisor/type") {
        return Some(t.trim().to_owned());
    }
    let vendor = fs::read_to_string("/sys/class/dmi/id/sys_vendor").unwrap_or_default();
    let product = fs::read_to_string("/sys/class/dmi/id/product_name").unwrap_or_default();
    for (needle, name) in [
        ("QEMU", "qemu"),
        ("KVM", "kvm"),
        ("VMware", "vmware"),
        ("Microsoft", "hyperv"),
        ("Xen", "xen"),
        ("innotek", "virtualbox"),
    ] {
        if vendor.contains(needle) || product.contains(needle) {
            return Some(name.into());
        }
    }
    cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"))
        .then(|| "unknown hypervisor".into())
}

/// Reads this machine's shape.
pub fn detect() -> Shape {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Shape {
        cpu_model: cpu_model(&cpuinfo),
        cores: cores().unwrap_or(threads),
        threads,
        arch: std::env::consts::ARCH.into(),
        virtualization: virtualization(&cpuinfo),
    }
}

/// A fingerprint of the hardware: model, threads, RAM and disk rounded to GiB.
pub fn fingerprint(shape: &Shape, ram_bytes: u64, disk_bytes: u64) -> String {
    let text = format!(
        "{}|{}|{}|{}|{}",
        shape.cpu_model,
        shape.cores,
        shape.threads,
        ram_bytes >> 30,
        disk_bytes >> 30
    );
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_name_is_read_from_cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu hypervisor\n";
        assert_eq!(cpu_model(text), "AMD EPYC 7B13");
        assert_eq!(cpu_model(""), "unknown");
    }

    #[test]
    fn this_machine_has_a_shape_and_a_stable_fingerprint() {
        let s = detect();
        assert!(
            s.threads >= 1 && s.cores >= 1 && s.cores <= s.threads,
            "{s:?}"
        );
        assert_eq!(
            fingerprint(&s, 8 << 30, 100 << 30),
            fingerprint(&s, 8 << 30, 100 << 30)
        );
        assert_ne!(
            fingerprint(&s, 8 << 30, 100 << 30),
            fingerprint(&s, 16 << 30, 100 << 30)
        );
    }
}
