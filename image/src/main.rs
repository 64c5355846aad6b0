//! `fluxnode-image`: builds the kernel, initramfs, UKI and GPT disk image on a build host.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use image::artifact::Artifact;
use image::disk::{parse_size, DiskSpec};
use image::kernel::{Flavor, KernelBuild};
use image::pipeline::{self, ImageInputs};
use image::update::keys::{self, ReleaseKeys};
use image::update::{bundle, version::Version};
use image::{rootfs, uki};

#[derive(Parser)]
#[command(
    name = "fluxnode-image",
    version,
    about = "Build the fluxnode kernel and disk image"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build (or find in the cache) the kernel; prints the bzImage path last.
    Kernel {
        #[arg(value_enum, default_value = "qemu")]
        flavor: Flavor,
        #[arg(long, default_value = "kernel-config")]
        config_dir: PathBuf,
        /// Cache directory (default: $XDG_CACHE_HOME/fluxnode or ~/.cache/fluxnode).
        #[arg(long)]
        cache: Option<PathBuf>,
    },
    /// Write the zstd-compressed initramfs around a fluxnode binary.
    Initramfs {
        #[arg(long)]
        init: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = image::VERSION, value_parser = version)]
        version: String,
        /// Release keys files the node trusts for updates (repeatable).
        #[arg(long)]
        release_keys: Vec<PathBuf>,
        /// A release build: at least one release key, and no development key.
        #[arg(long)]
        release: bool,
    },
    /// Wrap kernel, initramfs and command line into a unified kernel image.
    Uki {
        #[arg(long)]
        kernel: PathBuf,
        #[arg(long)]
        initrd: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = image::DEFAULT_CMDLINE)]
        cmdline: String,
        #[arg(long, default_value = uki::DEFAULT_STUB)]
        stub: PathBuf,
        /// The version in the UKI's .osrel.
        #[arg(long, default_value = image::VERSION, value_parser = version)]
        version: String,
    },
    /// Write the GPT disk image (ESP with systemd-boot and the UKI, FLUXDATA ext4).
    Disk {
        #[arg(long)]
        uki: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "256M", value_parser = parse_size)]
        size: u64,
        #[arg(long, default_value = image::VERSION, value_parser = version)]
        version: String,
    },
    /// Make an Ed25519 release key pair: PREFIX.key (PKCS#8, 0600) and PREFIX.pub.
    Keygen {
        #[arg(long)]
        out: PathBuf,
        /// A development key: trusted by development and test builds, refused by --release.
        #[arg(long)]
        development: bool,
    },
    /// Write a signed update bundle: the UKI, its version, its SHA-256 and a signature.
    Release {
        /// The release key pair (PKCS#8) to sign with.
        #[arg(long)]
        key: PathBuf,
        #[arg(long, value_parser = version)]
        version: String,
        #[arg(long)]
        uki: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a small OCI image layout from a directory (no registry needed).
    Oci {
        #[arg(long)]
        from_dir: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The command, as several --cmd words.
        #[arg(long = "cmd", num_args = 1..)]
        cmd: Vec<String>,
        /// KEY=VALUE environment entries.
        #[arg(long)]
        env: Vec<String>,
        #[arg(long, default_value = "latest")]
        tag: String,
    },
    /// Put a node's config (checked with the node's parser), and optionally its wallet key
    /// and the network's genesis, into an image's FLUXDATA before its first boot: as a
    /// normal user, with no root, loop device or mount.
    Configure {
        image: PathBuf,
        /// The node's config, written as /data/etc/fluxnode.toml.
        #[arg(long)]
        config: PathBuf,
        /// The wallet key (Ed25519 PKCS#8), written as /data/keys/wallet.key (0600).
        #[arg(long)]
        wallet: Option<PathBuf>,
        /// The network's genesis, written as /data/chain/genesis.json.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
    /// Write an image to a disk (or a file at least as large), then read it back and
    /// compare its SHA-256. Refuses a disk that is mounted, holds the running system, is in
    /// use, or is smaller than the image.
    Flash {
        image: PathBuf,
        target: PathBuf,
        /// Do not ask before writing (needed when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
    /// Build initramfs, UKI and disk into one directory.
    All {
        #[arg(long)]
        kernel: PathBuf,
        #[arg(long)]
        init: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
        #[arg(long, default_value = "256M", value_parser = parse_size)]
        size: u64,
        #[arg(long, default_value = image::DEFAULT_CMDLINE)]
        cmdline: String,
        #[arg(long, default_value = image::VERSION, value_parser = version)]
        version: String,
        /// Release keys files the node trusts for updates (repeatable).
        #[arg(long)]
        release_keys: Vec<PathBuf>,
        /// A release build: at least one release key, and no development key.
        #[arg(long)]
        release: bool,
        /// The metal image: `fluxnode-metal.img` and the metal command line (the kernel
        /// given must be the metal one).
        #[arg(long)]
        metal: bool,
    },
}

fn version(text: &str) -> Result<String, String> {
    Version::parse(text)
        .map(|v| v.to_string())
        .map_err(|e| e.to_string())
}

/// The concatenated, checked text of release keys files; None when there are none. A
/// `release` build refuses development keys and wants at least one key.
fn release_keys(files: &[PathBuf], release: bool) -> Result<Option<String>> {
    if files.is_empty() {
        if release {
            anyhow::bail!(
                "a release build needs --release-keys (the keys its updates are signed with)"
            );
        }
        return Ok(None);
    }
    let mut text = String::new();
    for f in files {
        let part = std::fs::read_to_string(f).with_context(|| f.display().to_string())?;
        let keys = ReleaseKeys::parse(&part, &f.display().to_string())?;
        if release && !keys.development().is_empty() {
            anyhow::bail!(
                "{}: holds the development key {}; a release build never trusts one",
                f.display(),
                keys.development().join(", ")
            );
        }
        text.push_str(&part);
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    Ok(Some(text))
}

/// Signs `uki` as `version` with `key` into `out` (through a temporary name).
fn release(key: &Path, version: &str, uki: &Path, out: &Path) -> Result<()> {
    let pair = keys::load_key_pair(key)?;
    let v = Version::parse(version)?;
    let bytes = std::fs::read(uki).with_context(|| uki.display().to_string())?;
    if bytes.is_empty() || bytes.len() as u64 > bundle::MAX_UKI {
        anyhow::bail!(
            "{}: {} bytes; a bundle carries 1 to {} bytes of UKI",
            uki.display(),
            bytes.len(),
            bundle::MAX_UKI
        );
    }
    let bundle = bundle::sign(&bytes, &v, &pair);
    let tmp = out.with_extension("tmp");
    std::fs::write(&tmp, &bundle).with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, out).with_context(|| out.display().to_string())?;
    let sha = image::artifact::sha256_file(uki)?;
    println!(
        "{} version {v} uki sha256 {sha} ({} bytes)",
        out.display(),
        bundle.len()
    );
    Ok(())
}

/// Checks the target, asks (unless `yes`), writes, verifies and says what it did.
fn flash(img: &Path, target: &Path, yes: bool) -> Result<()> {
    use std::io::IsTerminal;
    let len = image::flash::check(img, target)?;
    if !yes {
        anyhow::ensure!(
            std::io::stdin().is_terminal(),
            "not a terminal: add --yes to write {} to {}",
            img.display(),
            target.display()
        );
        eprint!(
            "write {} ({} MiB) over everything on {}? type yes: ",
            img.display(),
            len >> 20,
            target.display()
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        anyhow::ensure!(answer.trim() == "yes", "nothing written");
    }
    let f = image::flash::flash(img, target, std::io::stderr().is_terminal())?;
    println!(
        "wrote {} ({} bytes, sha256 {}) to {} in {:.1} s ({:.0} MiB/s{}); read back: the same sha256",
        img.display(),
        f.bytes,
        f.sha256,
        target.display(),
        f.secs,
        f.bytes as f64 / f.secs.max(1e-6) / (1 << 20) as f64,
        if f.direct { ", O_DIRECT" } else { ", through the page cache: O_DIRECT is not supported there" }
    );
    Ok(())
}

fn print(a: &Artifact) {
    println!("{a}");
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Kernel {
            flavor,
            config_dir,
            cache,
        } => {
            let build = KernelBuild {
                flavor,
                config_dir,
                cache: cache.unwrap_or_else(image::kernel::cache_dir),
            };
            let started = std::time::Instant::now();
            let kernel = build.run().context("kernel build")?;
            if !kernel.cached {
                eprintln!("kernel built in {:.0} s", started.elapsed().as_secs_f64());
            }
            println!("{}", kernel.bzimage.display());
        }
        Command::Initramfs {
            init,
            out,
            version,
            release_keys: keys_files,
            release,
        } => {
            let keys = release_keys(&keys_files, release)?;
            let cpio = pipeline::initramfs(&init, &version, keys.as_deref(), &out)?;
            eprintln!("initramfs: {cpio} bytes uncompressed");
            print(&Artifact::describe("initramfs", &out)?);
        }
        Command::Uki {
            kernel,
            initrd,
            out,
            cmdline,
            stub,
            version,
        } => {
            let inputs = uki::UkiInputs {
                stub,
                kernel,
                initrd,
                cmdline,
                os_release: rootfs::os_release(&version),
            };
            let work = out.with_extension("sections");
            uki::build(&inputs, &work, &out)?;
            print(&Artifact::describe("uki", &out)?);
        }
        Command::Disk {
            uki,
            out,
            size,
            version,
        } => {
            DiskSpec::new(uki, &version).size(size).write(&out)?;
            print(&Artifact::describe("disk", &out)?);
        }
        Command::Keygen { out, development } => {
            let (key, public) = keys::generate(&out, development)?;
            println!("{}\n{}", key.display(), public.display());
        }
        Command::Release {
            key,
            version,
            uki,
            out,
        } => release(&key, &version, &uki, &out)?,
        Command::Oci {
            from_dir,
            out,
            cmd,
            env,
            tag,
        } => {
            let digest = image::oci::build_layout(&from_dir, &out, &cmd, &env, &tag)?;
            println!("oci layout {} ({tag}): manifest {digest}", out.display());
        }
        Command::Configure {
            image,
            config,
            wallet,
            genesis,
        } => {
            let puts = image::configure::plan(&config, wallet.as_deref(), genesis.as_deref())?;
            for line in image::configure::apply(&image, &puts)? {
                println!("{line}");
            }
            println!("{} is configured", image.display());
        }
        Command::Flash { image, target, yes } => flash(&image, &target, yes)?,
        Command::All {
            kernel,
            init,
            out_dir,
            size,
            cmdline,
            version,
            release_keys: keys_files,
            release,
            metal,
        } => {
            let (cmdline, disk_name) = if metal {
                let cmdline = if cmdline == image::DEFAULT_CMDLINE {
                    image::METAL_CMDLINE.to_owned()
                } else {
                    cmdline
                };
                (cmdline, pipeline::METAL_DISK)
            } else {
                (cmdline, pipeline::DISK)
            };
            let inputs = ImageInputs {
                kernel,
                init,
                cmdline,
                version,
                disk_size: size,
                disk_name: disk_name.to_owned(),
                release_keys: release_keys(&keys_files, release)?,
            };
            for a in pipeline::build_all(&inputs, &out_dir)? {
                print(&a);
            }
        }
    }
    Ok(())
}
