//! The node kernel: Debian's linux-source tarball, `make ARCH=x86_64 tinyconfig`, our
//! fragments merged on top, every fragment line checked in the final `.config`, then a
//! bzImage. Cached by a hash of the pinned version and the fragments.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::error::{run_tool, Error, IoContext, Result};

/// Bumped when the build recipe changes in a way that changes the kernel.
const RECIPE: &str = "fluxnode-kernel-recipe-1";
const TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";

/// Which fragments go on top of tinyconfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// base + qemu: virtio and i6300esb; what CI boots.
    Qemu,
    /// base + qemu + metal: also server NICs, HBAs and hardware watchdogs.
    Metal,
}

impl Flavor {
    pub fn fragments(self) -> &'static [&'static str] {
        match self {
            Flavor::Qemu => &["base.config", "qemu.config"],
            Flavor::Metal => &["base.config", "qemu.config", "metal.config"],
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Qemu => "qemu",
            Flavor::Metal => "metal",
        }
    }
}

/// A fragment line that did not survive into `.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub fragment: String,
    pub line_no: usize,
    pub wanted: String,
    pub got: String,
}

/// Checks that every `CONFIG_X=v` and `# CONFIG_X is not set` line of a fragment holds in
/// the final config text.
pub fn check_fragment(name: &str, fragment: &str, config: &str) -> Vec<Dropped> {
    let mut dropped = Vec::new();
    for (i, raw) in fragment.lines().enumerate() {
        let line = raw.trim();
        let (key, wanted_set) = if let Some(rest) = line.strip_prefix("# ") {
            match rest.strip_suffix(" is not set") {
                Some(key) if key.starts_with("CONFIG_") => (key, false),
                _ => continue,
            }
        } else if line.starts_with("CONFIG_") {
            (line.split('=').next().unwrap_or(line), true)
        } else {
            continue;
        };
        let got = config
            .lines()
            .find(|l| l.starts_with(&format!("{key}=")) || *l == format!("# {key} is not set"))
            .unwrap_or("(absent)");
        let ok = if wanted_set {
            got == line
        } else {
            !got.starts_with(&format!("{key}="))
        };
        if !ok {
            dropped.push(Dropped {
                fragment: name.to_owned(),
                line_no: i + 1,
                wanted: line.to_owned(),
                got: got.to_owned(),
            });
        }
    }
    dropped
}

/// Where the kernel build keeps its source, build trees and finished kernels.
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/var/cache"));
    base.join("fluxnode")
}

/// A kernel build request.
#[derive(Debug, Clone)]
pub struct KernelBuild {
    pub flavor: Flavor,
    pub config_dir: PathBuf,
    pub cache: PathBuf,
}

/// The finished kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub bzimage: PathBuf,
    /// Uncompressed kernel size (vmlinux), for size reports.
    pub vmlinux_size: u64,
    pub cached: bool,
}

impl KernelBuild {
    fn read(&self, name: &str) -> Result<String> {
        let p = self.config_dir.join(name);
        fs::read_to_string(&p).at(p)
    }

    /// The pinned Debian linux-source version (kernel-config/VERSION).
    pub fn version(&self) -> Result<String> {
        Ok(self.read("VERSION")?.trim().to_owned())
    }

    /// Hash of the recipe, the pinned version and the fragments, naming the cache entry.
    pub fn key(&self) -> Result<String> {
        let mut h = Sha256::new();
        h.update(RECIPE);
        h.update(self.version()?);
        for f in self.flavor.fragments() {
            h.update(f);
            h.update(self.read(f)?);
        }
        Ok(hex::encode(h.finalize())[..16].to_owned())
    }

    pub fn output_dir(&self) -> Result<PathBuf> {
        Ok(self
            .cache
            .join("kernel")
            .join(format!("{}-{}", self.flavor.name(), self.key()?)))
    }

    /// Builds the kernel, or returns the cached one.
    pub fn run(&self) -> Result<Kernel> {
        let out = self.output_dir()?;
        let bzimage = out.join("bzImage");
        if bzimage.exists() {
            let vmlinux_size = fs::read_to_string(out.join("vmlinux.size"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            return Ok(Kernel {
                bzimage,
                vmlinux_size,
                cached: true,
            });
        }
        let src = self.source()?;
        let build = self
            .cache
            .join("kernel")
            .join(format!("build-{}", self.flavor.name()));
        fs::create_dir_all(&build).at(&build)?;
        self.configure(&src, &build)?;
        self.compile(&src, &build)?;
        fs::create_dir_all(&out).at(&out)?;
        let built = build.join("arch/x86/boot/bzImage");
        let tmp = out.join("bzImage.tmp");
        fs::copy(&built, &tmp).at(&built)?;
        fs::copy(build.join(".config"), out.join("config")).at(build.join(".config"))?;
        let vmlinux_size = fs::metadata(build.join("vmlinux"))
            .map(|m| m.len())
            .unwrap_or(0);
        fs::write(out.join("vmlinux.size"), vmlinux_size.to_string()).at(&out)?;
        fs::rename(&tmp, &bzimage).at(&bzimage)?;
        Ok(Kernel {
            bzimage,
            vmlinux_size,
            cached: false,
        })
    }

    /// Unpacks the Debian source tarball once per pinned version.
    fn source(&self) -> Result<PathBuf> {
        let version = self.version()?;
        let root = self.cache.join("src").join(&version);
        let src = root.join("linux-source-6.1");
        if root.join(".complete").exists() {
            return Ok(src);
        }
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).at(&root)?;
        let spin = spinner(format!("unpacking {TARBALL}"));
        run_tool(
            Command::new("tar")
                .arg("-xf")
                .arg(TARBALL)
                .arg("-C")
                .arg(&root),
        )?;
        spin.finish_with_message(format!("unpacked linux-source {version}"));
        fs::write(root.join(".complete"), &version).at(&root)?;
        Ok(src)
    }

    fn configure(&self, src: &Path, build: &Path) -> Result<()> {
        let o = format!("O={}", build.display());
        run_tool(
            Command::new("make")
                .current_dir(src)
                .args([&o, "ARCH=x86_64", "tinyconfig"]),
        )?;
        let mut merge = Command::new("scripts/kconfig/merge_config.sh");
        merge
            .current_dir(src)
            .arg("-m")
            .arg("-O")
            .arg(build)
            .arg(build.join(".config"));
        for f in self.flavor.fragments() {
            merge.arg(
                self.config_dir
                    .join(f)
                    .canonicalize()
                    .at(self.config_dir.join(f))?,
            );
        }
        run_tool(&mut merge)?;
        run_tool(
            Command::new("make")
                .current_dir(src)
                .args([&o, "ARCH=x86_64", "olddefconfig"]),
        )?;
        let config = fs::read_to_string(build.join(".config")).at(build.join(".config"))?;
        let mut dropped = Vec::new();
        for f in self.flavor.fragments() {
            dropped.extend(check_fragment(f, &self.read(f)?, &config));
        }
        if dropped.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = dropped
            .iter()
            .map(|d| {
                format!(
                    "  {}:{}: wanted {} but .config has {}",
                    d.fragment, d.line_no, d.wanted, d.got
                )
            })
            .collect();
        Err(Error::KernelConfig(format!(
            "{} fragment line(s) did not survive olddefconfig (a dependency is missing):\n{}",
            dropped.len(),
            lines.join("\n")
        )))
    }

    fn compile(&self, src: &Path, build: &Path) -> Result<()> {
        let steps_file = self
            .cache
            .join("kernel")
            .join(format!("steps-{}", self.flavor.name()));
        let estimate = fs::read_to_string(&steps_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1500u64);
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut child = Command::new("make")
            .current_dir(src)
            .arg(format!("O={}", build.display()))
            .args(["ARCH=x86_64", &format!("-j{jobs}"), "bzImage"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Tool {
                tool: "make".into(),
                detail: e.to_string(),
            })?;
        let bar = ProgressBar::new(estimate).with_style(
            ProgressStyle::with_template("kernel {bar:40} {pos}/~{len} {elapsed} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let stderr = child.stderr.take();
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(s) = stderr {
                for line in BufReader::new(s).lines().map_while(|l| l.ok()) {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            text
        });
        let mut steps = 0u64;
        if let Some(out) = child.stdout.take() {
            for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
                steps += 1;
                bar.set_position(steps.min(estimate));
                bar.set_message(line.trim().to_owned());
                if bar.is_hidden() && steps.is_multiple_of(250) {
                    eprintln!("kernel: {steps} build steps done");
                }
            }
        }
        let status = child.wait().map_err(|e| Error::Tool {
            tool: "make".into(),
            detail: e.to_string(),
        })?;
        bar.finish_and_clear();
        let stderr = errors.join().unwrap_or_default();
        if !status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
            return Err(Error::Tool {
                tool: "make bzImage".into(),
                detail: format!(
                    "{status}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ),
            });
        }
        let _ = fs::write(&steps_file, steps.to_string());
        Ok(())
    }
}

fn spinner(msg: String) -> ProgressBar {
    let s = ProgressBar::new_spinner().with_message(msg);
    s.enable_steady_tick(Duration::from_millis(120));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "CONFIG_64BIT=y\n# CONFIG_MODULES is not set\nCONFIG_NR_CPUS=512\n";

    #[test]
    fn surviving_lines_pass() {
        let frag = "# comment\nCONFIG_64BIT=y\n# CONFIG_MODULES is not set\nCONFIG_NR_CPUS=512\n";
        assert!(check_fragment("base.config", frag, CONFIG).is_empty());
    }

    #[test]
    fn dropped_lines_are_named_with_file_and_line() {
        let frag =
            "CONFIG_64BIT=y\nCONFIG_EXT4_FS=y\nCONFIG_NR_CPUS=64\n# CONFIG_64BIT is not set\n";
        let d = check_fragment("base.config", frag, CONFIG);
        let summary: Vec<(usize, &str)> = d.iter().map(|d| (d.line_no, d.got.as_str())).collect();
        assert_eq!(
            summary,
            [
                (2, "(absent)"),
                (3, "CONFIG_NR_CPUS=512"),
                (4, "CONFIG_64BIT=y")
            ]
        );
        assert_eq!(d[0].fragment, "base.config");
    }

    #[test]
    fn the_repository_fragments_are_well_formed() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kernel-config");
        for f in Flavor::Metal.fragments() {
            let text = fs::read_to_string(dir.join(f)).unwrap();
            for (i, line) in text.lines().enumerate() {
                let ok = line.is_empty()
                    || line.starts_with('#')
                    || (line.starts_with("CONFIG_") && line.contains('='));
                assert!(ok, "{f}:{}: {line:?}", i + 1);
            }
        }
    }

    #[test]
    fn cache_key_changes_with_the_fragments() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["VERSION", "base.config", "qemu.config", "metal.config"] {
            fs::write(dir.path().join(f), "CONFIG_A=y\n").unwrap();
        }
        let b = KernelBuild {
            flavor: Flavor::Qemu,
            config_dir: dir.path().into(),
            cache: dir.path().into(),
        };
        let before = b.key().unwrap();
        assert_eq!(before, b.key().unwrap());
        let metal = KernelBuild {
            flavor: Flavor::Metal,
            ..b.clone()
        };
        assert_ne!(before, metal.key().unwrap());
        fs::write(dir.path().join("qemu.config"), "CONFIG_B=y\n").unwrap();
        assert_ne!(before, b.key().unwrap());
    }
}
