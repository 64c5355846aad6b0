//! An app instance becomes an OCI runtime config (oci-spec's types, as libcontainer reads
//! them), with secure defaults: pid, net, ipc, uts, mount and cgroup namespaces; Docker's
//! default capability set and no more; no_new_privs; masked and read-only /proc paths; a
//! device cgroup that denies everything but the standard devices; the default-deny seccomp
//! allowlist of [`crate::seccomp`]; and cgroup v2 limits under an absolute path,
//! /apps/<app>-<instance>.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxBlockIo, LinuxCapabilities, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxMemory, LinuxNamespaceType, LinuxPids, LinuxResources, Mount, Spec,
};
use serde::{Deserialize, Serialize};

use crate::image::config::RunConfig;
use crate::net::Attached;
use crate::user::User;

/// What the chain (or an operator) asks to run; the wire form of control `app.run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    pub name: String,
    #[serde(default)]
    pub instance: u32,
    /// The image's manifest digest, `sha256:<hex>`.
    pub image: String,
    /// Where to import the image from when the store lacks it (a layout or oci-archive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Replaces the image's Entrypoint (and drops its Cmd), as `docker run --entrypoint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's Cmd when not empty.
    #[serde(default)]
    pub command: Vec<String>,
    /// Replaces the image's User (`uid`, `uid:gid`, `name`, `name:group`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Vec<String>,
    /// Ports the app serves (recorded in the bundle's annotations; publishing them on the
    /// host's network is not built yet).
    /// Ports published on the node: `HOST:CONTAINER[/tcp|/udp]` (DNAT to the app's own
    /// network namespace).
    #[serde(default)]
    pub ports: Vec<crate::net::PortMap>,
    /// CPU in thousandths of a core (1000 = one core).
    pub cpu_millis: u64,
    pub ram_bytes: u64,
    /// Disk space the app is sold (admission only; not enforced by a quota yet).
    #[serde(default)]
    pub disk_bytes: u64,
    #[serde(default = "default_pids")]
    pub pids: i64,
    /// cgroup v2 io.weight, 1 to 10000.
    #[serde(default = "default_weight")]
    pub disk_weight: u16,
    #[serde(default)]
    pub restart: RestartPolicy,
}

/// When PID1 starts an app's container again after it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    #[default]
    OnFailure,
    Always,
}

impl RestartPolicy {
    /// Whether an end with this success is followed by a new start.
    pub fn again(self, success: bool) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Always => true,
        }
    }
}

fn default_pids() -> i64 {
    1024
}

fn default_weight() -> u16 {
    100
}

impl AppSpec {
    /// The container id of this instance: `<name>-<instance>`.
    pub fn id(&self) -> String {
        format!("{}-{}", self.name, self.instance)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("app {0:?}: name must be 1-48 lowercase letters, digits or '-'")]
    Name(String),
    #[error("app {app}: {field} {value} is out of range ({range})")]
    Range {
        app: String,
        field: &'static str,
        value: String,
        range: &'static str,
    },
    #[error("app {0}: no command (neither the app nor its image gives one)")]
    NoCommand(String),
}

/// Docker's default capability set.
pub const DEFAULT_CAPS: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

const CPU_PERIOD_US: u64 = 100_000;

/// Checks the name and the resource figures of an app.
pub fn check(app: &AppSpec) -> Result<(), SpecError> {
    let ok_name = !app.name.is_empty()
        && app.name.len() <= 48
        && app
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok_name {
        return Err(SpecError::Name(app.name.clone()));
    }
    let range = |field, value: String, range| SpecError::Range {
        app: app.name.clone(),
        field,
        value,
        range,
    };
    if !(10..=1_024_000).contains(&app.cpu_millis) {
        return Err(range(
            "cpu_millis",
            app.cpu_millis.to_string(),
            "10 to 1024000",
        ));
    }
    if app.ram_bytes < (4 << 20) {
        return Err(range(
            "ram_bytes",
            app.ram_bytes.to_string(),
            "at least 4 MiB",
        ));
    }
    if !(1..=1_000_000).contains(&app.pids) {
        return Err(range("pids", app.pids.to_string(), "1 to 1000000"));
    }
    if !(1..=10_000).contains(&app.disk_weight) {
        return Err(range(
            "disk_weight",
            app.disk_weight.to_string(),
            "1 to 10000",
        ));
    }
    Ok(())
}

/// The cgroup of an instance, absolute so libcontainer never invents one.
pub fn cgroup_path(app: &AppSpec) -> PathBuf {
    PathBuf::from(format!("/apps/{}", app.id()))
}

fn device_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |allow: bool, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(allow);
        r.set_typ(Some(if major.is_some() {
            LinuxDeviceType::C
        } else {
            LinuxDeviceType::A
        }));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_owned()));
        r
    };
    let mut rules = vec![rule(false, None, None, "rwm")];
    // null, zero, full, random, urandom, tty, ptmx, and the pty slaves.
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(2)),
        (136, None),
    ] {
        rules.push(rule(true, Some(major), minor, "rwm"));
    }
    rules
}

fn resources(app: &AppSpec) -> LinuxResources {
    let mut cpu = LinuxCpu::default();
    cpu.set_period(Some(CPU_PERIOD_US));
    cpu.set_quota(Some((app.cpu_millis * CPU_PERIOD_US / 1000) as i64));
    let mut memory = LinuxMemory::default();
    memory.set_limit(Some(app.ram_bytes as i64));
    // memory + swap = memory: no swap (memory.swap.max = 0).
    memory.set_swap(Some(app.ram_bytes as i64));
    let mut pids = LinuxPids::default();
    pids.set_limit(app.pids);
    let mut io = LinuxBlockIo::default();
    io.set_weight(Some(app.disk_weight));
    let mut r = LinuxResources::default();
    r.set_cpu(Some(cpu));
    r.set_memory(Some(memory));
    r.set_pids(Some(pids));
    r.set_block_io(Some(io));
    r.set_devices(Some(device_rules()));
    r
}

/// Puts the container in the network namespace made for it, with that network's
/// /etc/resolv.conf and /etc/hosts bound read-only.
fn join_network(
    spec: &mut Spec,
    linux: &mut oci_spec::runtime::Linux,
    net: &Attached,
) -> Result<(), SpecError> {
    let mut namespaces = linux.namespaces().clone().unwrap_or_default();
    for ns in &mut namespaces {
        if ns.typ() == LinuxNamespaceType::Network {
            ns.set_path(Some(net.netns.clone()));
        }
    }
    linux.set_namespaces(Some(namespaces));
    let mut mounts = spec.mounts().clone().unwrap_or_default();
    for (src, dst) in [
        (&net.resolv_conf, "/etc/resolv.conf"),
        (&net.hosts, "/etc/hosts"),
    ] {
        let mut m = Mount::default();
        m.set_destination(PathBuf::from(dst));
        m.set_typ(Some("bind".into()));
        m.set_source(Some(src.clone()));
        m.set_options(Some(vec![
            "rbind".into(),
            "ro".into(),
            "nosuid".into(),
            "nodev".into(),
        ]));
        mounts.push(m);
    }
    spec.set_mounts(Some(mounts));
    Ok(())
}

/// The runtime config for `app` from its image's config (`image`; Docker's semantics for
/// what the app overrides), running as `user` (resolved in the image), with its root
/// filesystem at `rootfs`.
pub fn runtime_spec(
    app: &AppSpec,
    image: &RunConfig,
    user: &User,
    rootfs: &Path,
    net: Option<&Attached>,
) -> Result<Spec, SpecError> {
    check(app)?;
    let args = image.argv(app.entrypoint.as_deref(), &app.command);
    if args.is_empty() {
        return Err(SpecError::NoCommand(app.name.clone()));
    }
    let env = image.environment(&app.env, user.home.as_deref());
    let caps: HashSet<Capability> = DEFAULT_CAPS.into_iter().collect();
    let mut capabilities = LinuxCapabilities::default();
    capabilities.set_bounding(Some(caps.clone()));
    capabilities.set_effective(Some(caps.clone()));
    capabilities.set_permitted(Some(caps));
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);

    let mut spec = Spec::default();
    let mut process = spec.process().clone().unwrap_or_default();
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(PathBuf::from(image.cwd()));
    let mut u = oci_spec::runtime::User::default();
    u.set_uid(user.uid);
    u.set_gid(user.gid);
    if !user.additional_gids.is_empty() {
        u.set_additional_gids(Some(user.additional_gids.clone()));
    }
    process.set_user(u);
    process.set_no_new_privileges(Some(true));
    process.set_capabilities(Some(capabilities));
    process.set_terminal(Some(false));
    spec.set_process(Some(process));
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(rootfs.to_owned());
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    spec.set_hostname(Some(app.name.clone()));
    if !app.ports.is_empty() {
        let ports: Vec<String> = app.ports.iter().map(ToString::to_string).collect();
        spec.set_annotations(Some(
            [("org.fluxnode.ports".to_owned(), ports.join(","))].into(),
        ));
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    if let Some(net) = net {
        join_network(&mut spec, &mut linux, net)?;
    }
    linux.set_cgroups_path(Some(cgroup_path(app)));
    linux.set_resources(Some(resources(app)));
    linux.set_seccomp(Some(crate::seccomp::profile()));
    spec.set_linux(Some(linux));
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxNamespaceType, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall,
    };

    fn app() -> AppSpec {
        AppSpec {
            name: "web".into(),
            instance: 2,
            image: format!("sha256:{}", "a".repeat(64)),
            source: None,
            entrypoint: None,
            command: vec![],
            user: None,
            env: vec!["MODE=prod".into()],
            ports: vec!["8080:80".parse().unwrap()],
            cpu_millis: 1500,
            ram_bytes: 256 << 20,
            disk_bytes: 1 << 30,
            pids: 128,
            disk_weight: 200,
            restart: RestartPolicy::OnFailure,
        }
    }

    fn spec() -> Spec {
        let image = RunConfig {
            cmd: vec!["/bin/web".into(), "--serve".into()],
            env: vec!["A=1".into()],
            ..RunConfig::default()
        };
        runtime_spec(
            &app(),
            &image,
            &User::default(),
            Path::new("/data/instances/web-2/rootfs"),
            None,
        )
        .unwrap()
    }

    #[test]
    fn resources_map_to_the_cgroup_v2_limits() {
        let s = spec();
        let linux = s.linux().as_ref().unwrap();
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/apps/web-2"))
        );
        let r = linux.resources().as_ref().unwrap();
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(
            (cpu.quota(), cpu.period()),
            (Some(150_000), Some(100_000)),
            "cpu.max 150000 100000"
        );
        let mem = r.memory().as_ref().unwrap();
        assert_eq!(
            (mem.limit(), mem.swap()),
            (Some(256 << 20), Some(256 << 20)),
            "no swap"
        );
        assert_eq!(r.pids().as_ref().unwrap().limit(), 128);
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(200));
    }

    #[test]
    fn the_wire_form_fills_defaults_and_ports_become_an_annotation() {
        let a: AppSpec = serde_json::from_str(&format!(
            r#"{{"name":"db","image":"sha256:{}","cpu_millis":500,"ram_bytes":67108864,"restart":"always"}}"#,
            "b".repeat(64)
        ))
        .unwrap();
        assert_eq!(
            (a.instance, a.pids, a.disk_weight, a.restart),
            (0, 1024, 100, RestartPolicy::Always)
        );
        assert_eq!(a.id(), "db-0");
        assert!(RestartPolicy::OnFailure.again(false) && !RestartPolicy::OnFailure.again(true));
        assert!(!RestartPolicy::No.again(false) && RestartPolicy::Always.again(true));
        let s = spec();
        assert_eq!(
            s.annotations().as_ref().unwrap()["org.fluxnode.ports"],
            "8080:80/tcp"
        );
        let bad = serde_json::from_str::<AppSpec>(r#"{"name":"x","restart":"sometimes"}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn the_defaults_are_locked_down() {
        let s = spec();
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.args().as_ref().unwrap(), &["/bin/web", "--serve"]);
        assert!(
            p.env().as_ref().unwrap().iter().any(|e| e == "A=1")
                && p.env().as_ref().unwrap().iter().any(|e| e == "MODE=prod")
        );
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap();
        assert_eq!(caps.len(), 14);
        assert!(!caps.contains(&Capability::SysAdmin) && !caps.contains(&Capability::NetAdmin));
        let linux = s.linux().as_ref().unwrap();
        let ns: Vec<LinuxNamespaceType> = linux
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect();
        for want in [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Cgroup,
        ] {
            assert!(ns.contains(&want), "{want:?} missing");
        }
        assert!(linux
            .masked_paths()
            .as_ref()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/kcore"));
        assert!(linux
            .readonly_paths()
            .as_ref()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/sys"));
        let devices = linux
            .resources()
            .as_ref()
            .unwrap()
            .devices()
            .as_ref()
            .unwrap();
        assert!(!devices[0].allow(), "deny everything first");
        assert!(
            !devices.iter().any(|d| d.allow() && d.major() == Some(10)),
            "no /dev/loop-control (10:237) or other misc devices"
        );
        let seccomp = linux.seccomp().as_ref().unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
        let rules = seccomp.syscalls().as_ref().unwrap();
        let allowed = crate::seccomp::allowed_names(seccomp);
        for call in [
            "read",
            "write",
            "execve",
            "openat",
            "futex",
            "epoll_wait",
            "socket",
            "connect",
            "clone",
        ] {
            assert!(allowed.contains(&call), "{call} must be allowed");
        }
        for call in [
            "io_uring_setup",
            "keyctl",
            "bpf",
            "mount",
            "ptrace",
            "unshare",
            "setns",
            "init_module",
            "clock_settime",
        ] {
            assert!(!allowed.contains(&call), "{call} must not be allowed");
        }
        // clone only when its flags (argument 0) carry no namespace flag, in the form
        // libcontainer reads: mask in valueTwo, datum in value.
        let namespaces = (libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWCGROUP) as u64;
        assert_eq!(namespaces, 0x7e02_0000);
        let clone: Vec<&LinuxSyscall> = rules
            .iter()
            .filter(|r| r.names().iter().any(|n| n == "clone"))
            .collect();
        assert!(
            clone.iter().all(|r| r.args().is_some()),
            "clone is never free"
        );
        assert!(clone.iter().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.args().as_deref().is_some_and(|a| {
                    a.len() == 1
                        && a[0].index() == 0
                        && a[0].op() == LinuxSeccompOperator::ScmpCmpMaskedEq
                        && a[0].value() == 0
                        && a[0].value_two() == Some(namespaces)
                })
        }));
        let clone3 = rules
            .iter()
            .find(|r| r.names().iter().any(|n| n == "clone3"))
            .unwrap();
        assert_eq!(
            (clone3.action(), clone3.errno_ret()),
            (LinuxSeccompAction::ScmpActErrno, Some(libc::ENOSYS as u32))
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains("\"cgroupsPath\":\"/apps/web-2\""), "{json}");
    }

    #[test]
    fn bad_apps_are_refused_naming_the_field() {
        let x = RunConfig {
            cmd: vec!["/x".into()],
            ..RunConfig::default()
        };
        let none = User::default();
        let mut a = app();
        a.name = "Web_App".into();
        assert_eq!(
            runtime_spec(&a, &x, &none, Path::new("/r"), None).unwrap_err(),
            SpecError::Name("Web_App".into())
        );
        let mut a = app();
        a.pids = 0;
        let err = runtime_spec(&a, &x, &none, Path::new("/r"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "app web: pids 0 is out of range (1 to 1000000)"
        );
        assert_eq!(
            runtime_spec(&app(), &RunConfig::default(), &none, Path::new("/r"), None).unwrap_err(),
            SpecError::NoCommand("web".into())
        );
    }
}
