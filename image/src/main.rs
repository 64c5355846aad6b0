//! `fluxnode-image`: builds the kernel, initramfs, UKI and GPT disk image on a build host.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use image::artifact::Artifact;
use image::disk::{parse_size, DiskSpec};
use image::kernel::{Flavor, KernelBuild};
use image::pipeline::{self, ImageInputs};
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
    },
    /// Write the GPT disk image (ESP with systemd-boot and the UKI, FLUXDATA ext4).
    Disk {
        #[arg(long)]
        uki: PathBuf,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "256M", value_parser = parse_size)]
        size: u64,
        #[arg(long, default_value = image::VERSION)]
        version: String,
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
        #[arg(long, default_value = image::VERSION)]
        version: String,
    },
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
        Command::Initramfs { init, out } => {
            let cpio = pipeline::initramfs(&init, image::VERSION, &out)?;
            eprintln!("initramfs: {cpio} bytes uncompressed");
            print(&Artifact::describe("initramfs", &out)?);
        }
        Command::Uki {
            kernel,
            initrd,
            out,
            cmdline,
            stub,
        } => {
            let inputs = uki::UkiInputs {
                stub,
                kernel,
                initrd,
                cmdline,
                os_release: rootfs::os_release(image::VERSION),
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
        Command::All {
            kernel,
            init,
            out_dir,
            size,
            cmdline,
            version,
        } => {
            let inputs = ImageInputs {
                kernel,
                init,
                cmdline,
                version,
                disk_size: size,
            };
            for a in pipeline::build_all(&inputs, &out_dir)? {
                print(&a);
            }
        }
    }
    Ok(())
}
