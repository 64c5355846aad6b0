//! One blob from the registry into the pull's layout: streamed to `<hex>.partial` with its
//! size and SHA-256 checked as the bytes arrive, renamed to `<hex>` once whole and right.
//! A whole blob left by an earlier pull is hashed again and kept; a partial one is resumed
//! with a Range request (and fetched again from its start if the result is wrong).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use futures_util::StreamExt;
use oci_client::client::{BlobResponse, SizedStream};
use oci_client::manifest::OciDescriptor;
use oci_client::{Client, Reference};
use ring::digest::{Context, SHA256};

use super::{PullError, Pulling};

/// Bytes of the pull on disk so far, of all the blobs together.
pub(super) struct Tally<'a> {
    pub done: u64,
    pub total: u64,
    pub report: &'a mut dyn FnMut(super::Progress),
}

impl Tally<'_> {
    fn add(&mut self, n: u64) {
        self.done += n;
        self.tell();
    }

    fn sub(&mut self, n: u64) {
        self.done = self.done.saturating_sub(n);
        self.tell();
    }

    pub fn tell(&mut self) {
        (self.report)(super::Progress {
            done: self.done,
            total: self.total,
        })
    }
}

/// What one blob is, as the manifest declares it.
pub(super) struct Want<'a> {
    pub digest: &'a str,
    pub hex: &'a str,
    pub size: u64,
    pub media_type: &'a str,
}

fn hash_file(path: &Path, ctx: &mut Context) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let got = f.read(&mut buf)?;
        if got == 0 {
            return Ok(n);
        }
        ctx.update(&buf[..got]);
        n += got as u64;
    }
}

fn hex_digest(ctx: Context) -> String {
    format!("sha256:{}", hex::encode(ctx.finish().as_ref()))
}

/// How a download ended when it did not end with a whole, right blob.
enum Failed {
    /// The bytes were all there but wrong.
    Mismatch(String),
    /// A resume's request was refused (a 416: the registry's blob is shorter than what
    /// is kept).
    ResumeRefused(PullError),
    Other(PullError),
}

impl From<PullError> for Failed {
    fn from(e: PullError) -> Self {
        Failed::Other(e)
    }
}

pub(super) async fn fetch(
    p: &Pulling<'_>,
    client: &Client,
    reference: &Reference,
    want: &Want<'_>,
    dir: &Path,
    tally: &mut Tally<'_>,
) -> Result<(), PullError> {
    let path = dir.join(want.hex);
    let partial = dir.join(format!("{}.partial", want.hex));
    if let Ok(meta) = fs::metadata(&path) {
        if meta.len() == want.size {
            let mut ctx = Context::new(&SHA256);
            hash_file(&path, &mut ctx).map_err(p.io(&path))?;
            if hex_digest(ctx) == want.digest {
                tally.add(want.size);
                return Ok(());
            }
        }
        fs::remove_file(&path).map_err(p.io(&path))?;
    }
    let mut restarted = false;
    loop {
        // Where to start: the bytes of an earlier, interrupted pull, hashed again.
        let mut ctx = Context::new(&SHA256);
        let mut offset = match fs::metadata(&partial) {
            Ok(m) if m.len() <= want.size => {
                hash_file(&partial, &mut ctx).map_err(p.io(&partial))?
            }
            Ok(_) => {
                fs::remove_file(&partial).map_err(p.io(&partial))?;
                0
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(p.io(&partial)(e)),
        };
        tally.add(offset);
        let resumed = offset > 0;
        let result = if offset == want.size {
            // Whole already: it only needs its check (and its rename).
            let got = hex_digest(ctx);
            if got == want.digest {
                Ok(())
            } else {
                Err(Failed::Mismatch(got))
            }
        } else {
            download(
                p,
                client,
                reference,
                want,
                &partial,
                &mut offset,
                ctx,
                tally,
            )
            .await
        };
        match result {
            Ok(()) => {
                fs::rename(&partial, &path).map_err(p.io(&path))?;
                return Ok(());
            }
            Err(Failed::Mismatch(got)) => {
                // Wrong bytes are never kept: the next try (or pull) starts from zero.
                fs::remove_file(&partial).map_err(p.io(&partial))?;
                tally.sub(offset);
                // Resumed bytes may be what was wrong (a power cut, a registry that changed
                // its blob): once more from zero, then the registry's bytes are named.
                if resumed && !restarted {
                    restarted = true;
                    continue;
                }
                return Err(PullError::Digest {
                    image: p.image.to_owned(),
                    what: "blob",
                    expected: want.digest.to_owned(),
                    got,
                });
            }
            Err(Failed::ResumeRefused(e)) => {
                // The registry will not send the rest of what is kept: start again from
                // zero, once.
                fs::remove_file(&partial).map_err(p.io(&partial))?;
                tally.sub(offset);
                if restarted {
                    return Err(e);
                }
                restarted = true;
            }
            Err(Failed::Other(e)) => return Err(e),
        }
    }
}

/// Streams the blob from `*offset` (0, or where a partial file ends) into `partial`,
/// hashing with `ctx` (which has hashed the bytes before `*offset`). On return `*offset`
/// is how many bytes `partial` holds.
#[allow(clippy::too_many_arguments)]
async fn download(
    p: &Pulling<'_>,
    client: &Client,
    reference: &Reference,
    want: &Want<'_>,
    partial: &Path,
    offset: &mut u64,
    mut ctx: Context,
    tally: &mut Tally<'_>,
) -> Result<(), Failed> {
    let desc = OciDescriptor {
        media_type: want.media_type.to_owned(),
        digest: want.digest.to_owned(),
        size: want.size as i64,
        ..Default::default()
    };
    let what = format!("blob {}", want.digest);
    let response = match client
        .pull_blob_stream_partial(reference, &desc, *offset, None)
        .await
    {
        Ok(r) => r,
        // distribution 2.8 answers a Range past the end of its blob with a 416 whose
        // Content-Length is the blob's size and whose body is a short text, so oci-client
        // fails reading that body instead of naming the 416: any refusal of a resume
        // (other than a registry out of reach) starts the blob again.
        Err(e) if *offset > 0 => {
            let e = p.oci(e, &what);
            return Err(match e {
                PullError::Unreachable { .. } => Failed::Other(e),
                _ => Failed::ResumeRefused(e),
            });
        }
        Err(e) => return Err(p.oci(e, &what).into()),
    };
    let mut stream: SizedStream = match response {
        BlobResponse::Partial(s) => s,
        BlobResponse::Full(s) => {
            // The registry ignored the Range: start the file again.
            if *offset > 0 {
                tally.sub(*offset);
                *offset = 0;
                ctx = Context::new(&SHA256);
            }
            s
        }
    };
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(partial)
        .map_err(p.io(partial))?;
    file.set_len(*offset).map_err(p.io(partial))?;
    io::Seek::seek(&mut file, io::SeekFrom::Start(*offset)).map_err(p.io(partial))?;
    let too_big = |p: &Pulling<'_>| PullError::TooBig {
        image: p.image.to_owned(),
        blob: want.digest.to_owned(),
        declared: want.size,
    };
    if let Some(len) = stream.content_length {
        if offset.saturating_add(len) > want.size {
            drop(file);
            let _ = fs::remove_file(partial);
            return Err(too_big(p).into());
        }
    }
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut broke = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => {
                let n = bytes.len() as u64;
                if *offset + n > want.size {
                    drop(out);
                    let _ = fs::remove_file(partial);
                    return Err(too_big(p).into());
                }
                ctx.update(&bytes);
                out.write_all(&bytes).map_err(p.io(partial))?;
                *offset += n;
                tally.add(n);
            }
            Err(e) => {
                broke = Some(e);
                break;
            }
        }
    }
    out.flush().map_err(p.io(partial))?;
    drop(out);
    // oci-client's own check of a whole (200) response ends its stream with an error when
    // the digest is wrong; ours below says the same with both digests.
    if *offset < want.size {
        return Err(match broke {
            Some(e) => PullError::Interrupted {
                image: p.image.to_owned(),
                blob: want.digest.to_owned(),
                done: *offset,
                size: want.size,
                reason: super::chain(&e),
            },
            None => {
                let _ = fs::remove_file(partial);
                PullError::Short {
                    image: p.image.to_owned(),
                    blob: want.digest.to_owned(),
                    got: *offset,
                    declared: want.size,
                }
            }
        }
        .into());
    }
    let got = hex_digest(ctx);
    if got != want.digest {
        return Err(Failed::Mismatch(got));
    }
    Ok(())
}
