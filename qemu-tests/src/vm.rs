//! One QEMU virtual machine: built step by step with [`VmBuilder`], then watched through its
//! serial log and QMP socket. Dropping a [`Vm`] kills QEMU.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::accel::{self, Accel};
use crate::qmp::Qmp;
use crate::Artifacts;

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The address at which a guest reaches this host's forwarded ports. QEMU refuses a
/// guestfwd on its own 10.0.2.2, so another address of the user network is used.
pub const GUEST_HOST: &str = "10.0.2.100";

/// How the VM boots.
#[derive(Debug, Clone)]
pub enum Boot {
    /// QEMU loads kernel and initramfs itself (`-kernel`), the fast path for tests.
    Direct { kernel: PathBuf, initrd: PathBuf },
    /// UEFI firmware (OVMF) boots the GPT disk image, as a real server would.
    Disk { image: PathBuf },
}

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("qemu: {0}")]
    Spawn(io::Error),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("no {needle:?} on the serial console within {timeout:?}; last lines:\n{tail}")]
    Timeout {
        needle: String,
        timeout: Duration,
        tail: String,
    },
    #[error("qemu exited ({status}) before {needle:?} appeared; last lines:\n{tail}")]
    Exited {
        needle: String,
        status: ExitStatus,
        tail: String,
    },
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Qmp(#[from] crate::qmp::QmpError),
}

/// A VM description. `spawn()` starts it with a serial log file and a QMP socket;
/// `interactive_command()` gives the same machine with the console on the terminal.
#[derive(Debug, Clone)]
pub struct VmBuilder {
    boot: Boot,
    accel: Accel,
    memory_mb: u32,
    smp: u32,
    cmdline_extra: Vec<String>,
    forwards: Vec<(u16, u16)>,
    network: bool,
    reboot: bool,
    timeout: Duration,
    data_disk: Option<PathBuf>,
    guestfwds: Vec<u16>,
    /// Server-like devices instead of virtio ones (see `server`).
    server: Option<ServerDisks>,
}

/// The extra disks of a server-like VM: one on the q35's AHCI, one behind a megasas-gen2 HBA.
#[derive(Debug, Clone)]
pub struct ServerDisks {
    pub sata: PathBuf,
    pub sas: PathBuf,
}

impl VmBuilder {
    pub fn new(boot: Boot) -> Self {
        VmBuilder {
            boot,
            accel: Accel::Tcg,
            memory_mb: 1024,
            smp: 2,
            cmdline_extra: Vec::new(),
            forwards: Vec::new(),
            network: false,
            reboot: false,
            timeout: Duration::from_secs(120),
            data_disk: None,
            guestfwds: Vec::new(),
            server: None,
        }
    }

    /// Server-like hardware instead of virtio: the node's disk on NVMe, an e1000e NIC, the
    /// extra disks on the q35's AHCI and behind a megasas-gen2 HBA (MegaRAID SAS), and the
    /// ICH9 TCO watchdog (iTCO_wdt) in place of the i6300esb. (virtio-rng stays: TCG's CPU
    /// has no RDRAND, a server's has.)
    pub fn server(mut self, disks: ServerDisks) -> Self {
        self.server = Some(disks);
        self
    }

    /// Turns the user-mode network on without forwards.
    pub fn network(mut self) -> Self {
        self.network = true;
        self
    }

    /// A VM of the built artifacts, direct (`disk = false`) or through OVMF, with the
    /// accelerator probed once per process.
    pub fn from_artifacts(a: &Artifacts, disk: Option<PathBuf>) -> Self {
        let boot = match disk {
            Some(image) => Boot::Disk { image },
            None => Boot::Direct {
                kernel: a.kernel.clone(),
                initrd: a.initrd.clone(),
            },
        };
        VmBuilder::new(boot).accel(accel::detect(&a.kernel, &a.initrd))
    }

    pub fn accel(mut self, accel: Accel) -> Self {
        self.accel = accel;
        self
    }
    pub fn memory_mb(mut self, mb: u32) -> Self {
        self.memory_mb = mb;
        self
    }
    pub fn smp(mut self, cpus: u32) -> Self {
        self.smp = cpus;
        self
    }
    /// Adds kernel command-line words (direct boot only; a UKI carries its own).
    pub fn cmdline_extra(mut self, words: &str) -> Self {
        self.cmdline_extra.push(words.to_owned());
        self
    }
    /// Forwards TCP 127.0.0.1:`host` to the guest's `guest` port (turns networking on). No UDP:
    /// libslirp sends a UDP forward's replies to the forward's own address, not the sender.
    pub fn forward(mut self, host: u16, guest: u16) -> Self {
        self.forwards.push((host, guest));
        self.network = true;
        self
    }

    /// Attaches a disk image (virtio) to a direct boot, as the node's disk.
    pub fn data_disk(mut self, image: impl Into<PathBuf>) -> Self {
        self.data_disk = Some(image.into());
        self
    }
    /// Lets the guest reach 127.0.0.1:`port` on this host as GUEST_HOST:`port` (turns
    /// networking on). The host side must be listening before `spawn`.
    pub fn guestfwd(mut self, port: u16) -> Self {
        self.guestfwds.push(port);
        self.network = true;
        self
    }
    /// Lets a guest reboot instead of ending QEMU.
    pub fn allow_reboot(mut self) -> Self {
        self.reboot = true;
        self
    }
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The node's own disk: virtio, or NVMe on a server-like VM.
    fn node_disk(&self, image: &Path) -> Vec<String> {
        if self.server.is_some() {
            vec![
                "-drive".into(),
                format!("if=none,id=boot,format=raw,file={}", image.display()),
                "-device".into(),
                "nvme,serial=fluxnode-boot,drive=boot".into(),
            ]
        } else {
            vec![
                "-drive".into(),
                format!("if=virtio,format=raw,file={}", image.display()),
            ]
        }
    }

    /// The QEMU arguments for a VM whose private files live in `dir`.
    fn args(&self, dir: &Path, serial: &str) -> Result<Vec<String>, VmError> {
        let mut a: Vec<String> = [
            "-machine",
            "q35",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ]
        .map(String::from)
        .to_vec();
        a.extend(self.accel.qemu_args().map(String::from));
        a.extend([
            "-m".into(),
            self.memory_mb.to_string(),
            "-smp".into(),
            self.smp.to_string(),
        ]);
        a.extend(["-serial".into(), serial.into()]);
        a.extend([
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", dir.join("qmp.sock").display()),
        ]);
        a.extend(["-device".into(), "virtio-rng-pci".into()]);
        // Every VM has a hardware watchdog, as a server would; when it fires, the VM resets.
        // A server-like VM uses the chipset's own TCO watchdog, with the "no reboot" strap
        // off so that it may reset the machine.
        match &self.server {
            None => a.extend(["-device".into(), "i6300esb".into()]),
            Some(d) => {
                a.extend(["-global".into(), "ICH9-LPC.noreboot=off".into()]);
                a.extend([
                    "-drive".into(),
                    format!("if=none,id=sata0,format=raw,file={}", d.sata.display()),
                    "-device".into(),
                    "ide-hd,drive=sata0,bus=ide.0".into(),
                    "-device".into(),
                    "megasas-gen2,id=sas".into(),
                    "-drive".into(),
                    format!("if=none,id=sas0,format=raw,file={}", d.sas.display()),
                    "-device".into(),
                    "scsi-hd,drive=sas0,bus=sas.0".into(),
                ]);
            }
        }
        a.extend(["-action".into(), "watchdog=reset".into()]);
        if !self.reboot {
            a.push("-no-reboot".into());
        }
        match &self.boot {
            Boot::Direct { kernel, initrd } => {
                let mut cmdline = image::DEFAULT_CMDLINE.to_owned();
                for w in &self.cmdline_extra {
                    cmdline.push(' ');
                    cmdline.push_str(w);
                }
                a.extend(["-kernel".into(), kernel.display().to_string()]);
                a.extend(["-initrd".into(), initrd.display().to_string()]);
                a.extend(["-append".into(), cmdline]);
                if let Some(disk) = &self.data_disk {
                    a.extend(self.node_disk(disk));
                }
            }
            Boot::Disk { image } => {
                if !self.cmdline_extra.is_empty() || self.data_disk.is_some() {
                    return Err(VmError::Usage(
                        "extra kernel command-line words and a separate data disk need a direct boot; the UKI carries its own".into(),
                    ));
                }
                let vars = dir.join("OVMF_VARS.fd");
                fs::copy(OVMF_VARS, &vars).map_err(|source| VmError::Io {
                    what: OVMF_VARS.into(),
                    source,
                })?;
                a.extend([
                    "-drive".into(),
                    format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
                    "-drive".into(),
                    format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
                ]);
                a.extend(self.node_disk(image));
            }
        }
        if self.network {
            let mut netdev = "user,id=n0,restrict=on".to_owned();
            for (host, guest) in &self.forwards {
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
            }
            for port in &self.guestfwds {
                netdev.push_str(&format!(
                    ",guestfwd=tcp:{GUEST_HOST}:{port}-tcp:127.0.0.1:{port}"
                ));
            }
            a.extend(["-netdev".into(), netdev]);
            let nic = if self.server.is_some() {
                "e1000e"
            } else {
                "virtio-net-pci"
            };
            a.extend([
                "-device".into(),
                format!("{nic},netdev=n0,id=nic0,romfile="),
            ]);
        }
        Ok(a)
    }

    /// Starts QEMU in the background with its serial console in a log file.
    pub fn spawn(self) -> Result<Vm, VmError> {
        let dir = tempfile::tempdir().map_err(|source| VmError::Io {
            what: "tempdir".into(),
            source,
        })?;
        let serial = dir.path().join("serial.log");
        let args = self.args(dir.path(), &format!("file:{}", serial.display()))?;
        let child = Command::new("qemu-system-x86_64")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(VmError::Spawn)?;
        Ok(Vm {
            child,
            dir,
            serial,
            qmp: None,
            started: Instant::now(),
            timeout: self.timeout,
        })
    }

    /// The same machine with the serial console (and QEMU monitor, Ctrl-A C) on this
    /// terminal; Ctrl-A X leaves. Its private files go in `dir`.
    pub fn interactive_command(&self, dir: &Path) -> Result<Command, VmError> {
        let mut cmd = Command::new("qemu-system-x86_64");
        cmd.args(self.args(dir, "mon:stdio")?);
        Ok(cmd)
    }
}

/// A running VM.
pub struct Vm {
    child: Child,
    dir: tempfile::TempDir,
    serial: PathBuf,
    qmp: Option<Qmp>,
    started: Instant,
    timeout: Duration,
}

impl Vm {
    /// Everything the guest printed on its serial console so far.
    pub fn serial_log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.serial).unwrap_or_default()).into_owned()
    }

    /// The last `n` lines of the serial log.
    pub fn tail(&self, n: usize) -> String {
        let log = self.serial_log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Time since QEMU was started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until a serial line contains `needle`; returns that line.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, VmError> {
        let deadline = Instant::now() + timeout.min(self.timeout);
        loop {
            if let Some(line) = self.serial_log().lines().find(|l| l.contains(needle)) {
                return Ok(line.to_owned());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // One more look: the line may have landed just before QEMU ended.
                if let Some(line) = self.serial_log().lines().find(|l| l.contains(needle)) {
                    return Ok(line.to_owned());
                }
                return Err(VmError::Exited {
                    needle: needle.into(),
                    status,
                    tail: self.tail(40),
                });
            }
            if Instant::now() >= deadline {
                return Err(VmError::Timeout {
                    needle: needle.into(),
                    timeout,
                    tail: self.tail(40),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The QMP connection, opened on first use.
    pub fn qmp(&mut self) -> Result<&mut Qmp, VmError> {
        if self.qmp.is_none() {
            let sock = self.dir.path().join("qmp.sock");
            self.qmp = Some(Qmp::connect(&sock, Duration::from_secs(10))?);
        }
        Ok(self.qmp.as_mut().expect("set just above"))
    }

    /// Waits for QEMU to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, VmError> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    return Err(VmError::Timeout {
                        needle: "<qemu exit>".into(),
                        timeout,
                        tail: self.tail(40),
                    })
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(source) => {
                    return Err(VmError::Io {
                        what: "wait for qemu".into(),
                        source,
                    })
                }
            }
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
