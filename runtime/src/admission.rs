//! Admission: the apps' cpu, ram and disk together must fit the node's capacity (from its
//! benchmark report, or the hardware when there is none) minus the system reserve.
//! Whatever does not fit is refused, naming the resource and both figures.

use serde::{Deserialize, Serialize};

use crate::spec::AppSpec;

/// Cpu in thousandths of a core, ram and disk in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub cpu_millis: u64,
    pub ram_bytes: u64,
    pub disk_bytes: u64,
}

impl Resources {
    pub fn of(app: &AppSpec) -> Self {
        Resources {
            cpu_millis: app.cpu_millis,
            ram_bytes: app.ram_bytes,
            disk_bytes: app.disk_bytes,
        }
    }
}

/// Bytes from `512M`, `2G`, `1.5G`, `65536` (K, M, G, T are powers of 1024).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return None,
            };
            (&t[..i], (1u64 << shift) as f64)
        }
        _ => (t, 1.0),
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * mult).round() as u64)
}

/// Thousandths of a core from `0.5`, `2`, `1.25`.
pub fn parse_cores(text: &str) -> Option<u64> {
    let v: f64 = text.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| (v * 1000.0).round() as u64)
}

/// Flux's reserve for the node itself: 1 core, 2 GB of RAM and 80 GB of disk.
pub const FLUX_RESERVE: Resources = Resources {
    cpu_millis: 1000,
    ram_bytes: 2_000_000_000,
    disk_bytes: 80_000_000_000,
};

/// An app that does not fit: the resource short, and the figures (thousandths of a core
/// for cpu, bytes for ram and disk).
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub app: String,
    pub resource: &'static str,
    pub need: u64,
    pub free: u64,
    pub capacity: u64,
    pub reserve: u64,
}

impl Refused {
    /// A figure of this resource, for people.
    pub fn show(&self, v: u64) -> String {
        if self.resource == "cpu" {
            format!("{}.{:03} cores", v / 1000, v % 1000)
        } else {
            format!("{} MiB", v >> 20)
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "app {}: {} does not fit: it needs {}, {} is free of {} (capacity {} minus reserve {})",
            self.app,
            self.resource,
            self.show(self.need),
            self.show(self.free),
            self.show(self.capacity.saturating_sub(self.reserve)),
            self.show(self.capacity),
            self.show(self.reserve)
        )
    }
}

impl std::error::Error for Refused {}

/// Whether `app` fits next to `running` (the other admitted apps; an app of the same name
/// is replaced, so it is not counted twice).
pub fn admit(
    app: &AppSpec,
    running: &[AppSpec],
    capacity: Resources,
    reserve: Resources,
) -> Result<(), Refused> {
    let others = || running.iter().filter(|a| a.name != app.name);
    let used = Resources {
        cpu_millis: others().map(|a| a.cpu_millis).sum(),
        ram_bytes: others().map(|a| a.ram_bytes).sum(),
        disk_bytes: others().map(|a| a.disk_bytes).sum(),
    };
    let want = Resources::of(app);
    let pick = |r: Resources| {
        [
            ("cpu", r.cpu_millis),
            ("ram", r.ram_bytes),
            ("disk", r.disk_bytes),
        ]
    };
    for i in 0..3 {
        let (resource, need) = pick(want)[i];
        let (cap, res, used) = (pick(capacity)[i].1, pick(reserve)[i].1, pick(used)[i].1);
        let free = cap.saturating_sub(res).saturating_sub(used);
        if need > free {
            return Err(Refused {
                app: app.name.clone(),
                resource,
                need,
                free,
                capacity: cap,
                reserve: res,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, cpu: u64, ram_mib: u64, disk_mib: u64) -> AppSpec {
        serde_json::from_value(serde_json::json!({
            "name": name, "image": "sha256:00", "cpu_millis": cpu,
            "ram_bytes": ram_mib << 20, "disk_bytes": disk_mib << 20,
        }))
        .unwrap()
    }

    const CAP: Resources = Resources {
        cpu_millis: 4000,
        ram_bytes: 8 << 30,
        disk_bytes: 100 << 30,
    };
    const RES: Resources = Resources {
        cpu_millis: 1000,
        ram_bytes: 2 << 30,
        disk_bytes: 80 << 30,
    };

    #[test]
    fn sizes_and_cores_parse() {
        assert_eq!(parse_bytes("64M"), Some(64 << 20));
        assert_eq!(parse_bytes("1.5g"), Some(3 << 29));
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("12Q"), None);
        assert_eq!(parse_bytes("-1M"), None);
        assert_eq!(parse_cores("0.25"), Some(250));
        assert_eq!(parse_cores("two"), None);
    }

    #[test]
    fn apps_fit_up_to_capacity_minus_reserve() {
        let a = app("a", 2000, 4096, 10240);
        assert_eq!(admit(&a, &[], CAP, RES), Ok(()));
        let b = app("b", 1000, 2048, 10240);
        assert_eq!(
            admit(&b, std::slice::from_ref(&a), CAP, RES),
            Ok(()),
            "exactly full"
        );
        let c = app("c", 10, 1, 0);
        let e = admit(&c, &[a.clone(), b], CAP, RES).unwrap_err();
        assert_eq!(e.resource, "cpu");
        assert_eq!(
            e.to_string(),
            "app c: cpu does not fit: it needs 0.010 cores, 0.000 cores is free of 3.000 cores (capacity 4.000 cores minus reserve 1.000 cores)"
        );
        let bigger_a = app("a", 3000, 6144, 20480);
        assert_eq!(admit(&bigger_a, &[a], CAP, RES), Ok(()), "replacing itself");
    }

    #[test]
    fn each_resource_is_named_when_it_is_the_one_short() {
        let ram = admit(&app("r", 100, 7000, 0), &[], CAP, RES).unwrap_err();
        assert_eq!(
            (ram.resource, ram.show(ram.need), ram.show(ram.free)),
            ("ram", "7000 MiB".to_owned(), "6144 MiB".to_owned())
        );
        let disk = admit(&app("d", 100, 10, 30 << 10), &[], CAP, RES).unwrap_err();
        assert_eq!(disk.resource, "disk");
        let tiny = Resources {
            cpu_millis: 500,
            ram_bytes: 1 << 30,
            disk_bytes: 1 << 30,
        };
        assert_eq!(
            admit(&app("t", 10, 1, 0), &[], tiny, RES)
                .unwrap_err()
                .resource,
            "cpu"
        );
    }
}
