//! `fluxnode pull`: pulls an image from a registry into the store (the helper PID1 runs
//! for a registry image, so a pull never blocks its loop), writing its progress to a file
//! for PID1 to read, and prints the manifest digest.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use runtime::image::pull::{self, Progress, PullOptions};
use runtime::image::store::Store;

/// How often the progress file is replaced at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

#[derive(Args)]
pub struct PullArgs {
    #[arg(long, default_value = "/data/images")]
    store: PathBuf,
    /// Registries: auth, and which take plain HTTP (a missing file: anonymous HTTPS).
    #[arg(long, default_value = "/data/etc/registries.toml")]
    registries: PathBuf,
    /// Keep `{"done":N,"total":M}` (bytes of the image's blobs on disk) in this file.
    #[arg(long)]
    progress: Option<PathBuf>,
    /// host[:port]/repo[:tag|@sha256:...]
    reference: String,
}

fn write_progress(path: &Path, p: Progress) -> Result<()> {
    let json = serde_json::to_vec(&p)?;
    runtime::durable::write(path, &json, 0o644)?;
    Ok(())
}

pub fn run(args: PullArgs) -> Result<()> {
    let registries = pull::load_registries(&args.registries)?;
    let store = Store::open(&args.store)?;
    let opts = PullOptions::new(&args.store, registries);
    let mut last: Option<Instant> = None;
    let mut latest = None;
    let mut failed = None;
    let mut report = |p: Progress| {
        latest = Some(p);
        let due = last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY);
        if let (Some(path), true, None) = (&args.progress, due, &failed) {
            last = Some(Instant::now());
            // A progress file that cannot be written stops nothing; it is named once.
            if let Err(e) = write_progress(path, p) {
                failed = Some(e);
            }
        }
    };
    let result = pull::pull(&args.reference, &store, &opts, &mut report);
    if let Some(e) = failed {
        eprintln!("fluxnode pull: progress: {e:#}");
    }
    // The last figures, however recent the one before.
    if let (Some(path), Some(p)) = (&args.progress, latest) {
        write_progress(path, p).with_context(|| format!("progress {}", path.display()))?;
    }
    let img = result?;
    // So an app naming this reference finds the image here (PID1 looks it up by name).
    store
        .record_ref(&args.reference, &img.manifest_digest)
        .with_context(|| format!("remember {}", args.reference))?;
    println!("{}", img.manifest_digest);
    Ok(())
}

/// `fluxnode ctl app pull REFERENCE`: the same pull into the node's store, run by this
/// command (not PID1) with a progress bar for the person waiting; prints the digest.
pub fn pull_here(reference: &str) -> Result<()> {
    let store_dir = Path::new("/data/images");
    let registries = pull::load_registries(Path::new("/data/etc/registries.toml"))?;
    let store = Store::open(store_dir)?;
    let opts = PullOptions::new(store_dir, registries);
    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(reference.to_owned());
    let result = pull::pull(reference, &store, &opts, &mut |p: Progress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    });
    bar.finish_and_clear();
    let img = result?;
    store.record_ref(reference, &img.manifest_digest)?;
    println!("{}", img.manifest_digest);
    Ok(())
}
