//! Frames on the wire: a u32 little-endian length, then that many bytes of message. A
//! length over the caller's limit is refused before anything is allocated, a zero length is
//! an error, and the body is buffered only as fast as its bytes really arrive (a peer that
//! announces 4 MiB and sends 4 bytes costs 4 bytes). Timeouts are the caller's.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest frame body on the wire.
pub const MAX_FRAME: usize = 4 * 1024 * 1024;
/// How much more buffer one read may ask for.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the connection closed")]
    Closed,
    #[error("the connection closed inside a frame ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
    #[error("a frame of {len} bytes is over the limit of {max}")]
    TooLarge { len: u64, max: usize },
    #[error("an empty frame")]
    Empty,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// Whether the stream is still at a frame boundary (the next read can succeed).
    pub fn in_sync(&self) -> bool {
        matches!(self, FrameError::Empty)
    }
}

/// Reads frames one at a time, keeping a partly read frame between calls: a `read` dropped
/// by a timeout loses nothing, so the next `read` carries on where it stopped.
#[derive(Debug, Default)]
pub struct FrameReader {
    buf: Vec<u8>,
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next frame's body, of at most `max` bytes. Cancel-safe.
    pub async fn read<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        max: usize,
    ) -> Result<Vec<u8>, FrameError> {
        loop {
            let want = if self.buf.len() < 4 {
                4
            } else {
                let len = u32::from_le_bytes(self.buf[..4].try_into().expect("4 bytes"));
                if len == 0 {
                    self.buf.drain(..4);
                    return Err(FrameError::Empty);
                }
                if len as usize > max {
                    return Err(FrameError::TooLarge {
                        len: len.into(),
                        max,
                    });
                }
                4 + len as usize
            };
            if self.buf.len() == want && want > 4 {
                let mut body = std::mem::take(&mut self.buf);
                body.drain(..4);
                return Ok(body);
            }
            let missing = want - self.buf.len();
            self.buf.reserve(missing.min(CHUNK));
            // `take` keeps the read inside this frame; `read_buf` is cancel-safe.
            let n = (&mut *r)
                .take(missing as u64)
                .read_buf(&mut self.buf)
                .await?;
            if n == 0 {
                if self.buf.is_empty() {
                    return Err(FrameError::Closed);
                }
                return Err(FrameError::Truncated {
                    got: self.buf.len(),
                    want,
                });
            }
        }
    }
}

/// Reads one frame's body of at most `max` bytes.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    FrameReader::new().read(r, max).await
}

/// Writes `body` as one frame and flushes it. Not cancel-safe: a write cut short leaves
/// the stream mid-frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<(), FrameError> {
    if body.is_empty() {
        return Err(FrameError::Empty);
    }
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len: body.len() as u64,
            max: MAX_FRAME,
        });
    }
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(body);
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_back_to_back() {
        let mut wire = Vec::new();
        write_frame(&mut wire, b"one").await.unwrap();
        write_frame(&mut wire, &[7; 1000]).await.unwrap();
        assert_eq!(&wire[..7], &[3, 0, 0, 0, b'o', b'n', b'e']);
        let mut r = &wire[..];
        let mut frames = FrameReader::new();
        assert_eq!(frames.read(&mut r, 1000).await.unwrap(), b"one");
        assert_eq!(frames.read(&mut r, 1000).await.unwrap(), vec![7; 1000]);
        assert!(matches!(
            frames.read(&mut r, 1000).await,
            Err(FrameError::Closed)
        ));
    }

    #[tokio::test]
    async fn bad_lengths_are_refused() {
        let e = read_frame(&mut &[0xff, 0xff, 0xff, 0xff][..], MAX_FRAME)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "a frame of 4294967295 bytes is over the limit of 4194304"
        );
        let e = read_frame(&mut &[11, 0, 0, 0, 1, 2][..], 10)
            .await
            .unwrap_err();
        assert!(
            matches!(e, FrameError::TooLarge { len: 11, max: 10 }),
            "{e}"
        );
        let e = read_frame(&mut &[0, 0, 0, 0, 1][..], 10).await.unwrap_err();
        assert!(matches!(e, FrameError::Empty) && e.in_sync());
        let e = read_frame(&mut &[5, 0, 0, 0, 1, 2][..], 10)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the connection closed inside a frame (6 of 9 bytes)"
        );
        let e = read_frame(&mut &[5, 0][..], 10).await.unwrap_err();
        assert!(
            matches!(e, FrameError::Truncated { got: 2, want: 4 }),
            "{e}"
        );
        let mut sink = Vec::new();
        assert!(matches!(
            write_frame(&mut sink, &[]).await,
            Err(FrameError::Empty)
        ));
        assert!(matches!(
            write_frame(&mut sink, &vec![0; MAX_FRAME + 1]).await,
            Err(FrameError::TooLarge { .. })
        ));
        assert!(sink.is_empty());
    }
}
