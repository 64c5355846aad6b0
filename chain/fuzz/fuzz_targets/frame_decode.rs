//! The p2p side: `Msg::decode` on any bytes never panics, and what it accepts is canonical
//! (encoding the message again gives the very same bytes) and within the bounds `check`
//! enforces on the sending side. The same bytes also go through `FrameReader` as a stream
//! that arrives in small chunks with a `Pending` between any two, each read dropped at a
//! `Pending` or not (the reader claims to be cancel-safe); the frames it returns must be
//! exactly those a plain parse of the stream finds, and each frame's body is decoded as a
//! message too; `read_frame` on the bytes as a plain in-memory reader must find the first
//! of those frames.
//!
//! The last input byte steers the stream: bits 0-3 the chunk size less one, bit 4 whether
//! reads are dropped at a `Pending`, bit 5 a frame limit of 256 bytes instead of 4 MiB.
#![no_main]

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};

use chain::p2p::{read_frame, FrameError, FrameReader, Msg, MAX_FRAME};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncRead, ReadBuf};

fn check_msg(bytes: &[u8]) {
    let Ok(msg) = Msg::decode(bytes) else {
        return;
    };
    assert_eq!(
        msg.encode(),
        bytes,
        "a decoded {} message encodes to other bytes",
        msg.name()
    );
    if let Err(e) = msg.check() {
        panic!("a decoded {} message fails its check: {e}", msg.name());
    }
}

/// An in-memory stream that gives at most `chunk` bytes per read and is `Pending` before
/// every read.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
    ready: bool,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.ready {
            me.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        me.ready = false;
        let n = me.chunk.min(me.data.len()).min(buf.remaining());
        buf.put_slice(&me.data[..n]);
        me.data = &me.data[n..];
        Poll::Ready(Ok(()))
    }
}

/// What one frame read gives, comparable.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    Frame(Vec<u8>),
    Empty,
    TooLarge(u64),
    Closed,
    Truncated { got: usize, want: usize },
}

/// The frames of `stream` as a plain parse finds them, up to the first error that ends it.
fn parse(mut stream: &[u8], max: usize) -> Vec<Read> {
    let mut out = Vec::new();
    loop {
        if stream.is_empty() {
            out.push(Read::Closed);
            return out;
        }
        if stream.len() < 4 {
            out.push(Read::Truncated {
                got: stream.len(),
                want: 4,
            });
            return out;
        }
        let len = u32::from_le_bytes(stream[..4].try_into().unwrap()) as usize;
        if len == 0 {
            out.push(Read::Empty);
            stream = &stream[4..];
            continue;
        }
        if len > max {
            out.push(Read::TooLarge(len as u64));
            return out;
        }
        if stream.len() < 4 + len {
            out.push(Read::Truncated {
                got: stream.len(),
                want: 4 + len,
            });
            return out;
        }
        out.push(Read::Frame(stream[4..4 + len].to_vec()));
        stream = &stream[4 + len..];
    }
}

/// A frame read's result, and whether the stream can go on after it.
fn classify(result: Result<Vec<u8>, FrameError>, max: usize) -> (Read, bool) {
    match result {
        Ok(body) => (Read::Frame(body), true),
        Err(e @ FrameError::Empty) => {
            assert!(e.in_sync());
            (Read::Empty, true)
        }
        Err(FrameError::TooLarge { len, max: m }) => {
            assert_eq!(m, max);
            (Read::TooLarge(len), false)
        }
        Err(FrameError::Closed) => (Read::Closed, false),
        Err(FrameError::Truncated { got, want }) => (Read::Truncated { got, want }, false),
        Err(FrameError::Io(e)) => panic!("an in-memory stream failed: {e}"),
    }
}

/// The first frame `read_frame` reads from `stream` as a plain in-memory reader.
fn read_first(mut stream: &[u8], max: usize) -> Read {
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = pin!(read_frame(&mut stream, max));
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(r) => classify(r, max).0,
        Poll::Pending => panic!("read_frame on bytes in memory is pending"),
    }
}

/// The frames `FrameReader` reads from `stream`, up to the first error that ends it.
fn read_all(stream: &[u8], chunk: usize, cancel: bool, max: usize) -> Vec<Read> {
    let mut cx = Context::from_waker(Waker::noop());
    let mut src = Trickle {
        data: stream,
        chunk,
        ready: false,
    };
    let mut frames = FrameReader::new();
    let mut out = Vec::new();
    // Each Ready read delivers a byte or the end, so this bounds the polls.
    let mut polls_left = 4 * stream.len() + 64;
    loop {
        let result = 'read: loop {
            let mut fut = pin!(frames.read(&mut src, max));
            loop {
                polls_left = polls_left.checked_sub(1).expect("the frame reader spins");
                match fut.as_mut().poll(&mut cx) {
                    Poll::Ready(r) => break 'read r,
                    Poll::Pending if cancel => continue 'read,
                    Poll::Pending => {}
                }
            }
        };
        let (read, go_on) = classify(result, max);
        out.push(read);
        if !go_on {
            return out;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_msg(data);
    let ctl = data.last().copied().unwrap_or(0);
    let chunk = (ctl & 0x0f) as usize + 1;
    let cancel = ctl & 0x10 != 0;
    let max = if ctl & 0x20 != 0 { 256 } else { MAX_FRAME };
    let got = read_all(data, chunk, cancel, max);
    assert_eq!(
        read_first(data, max),
        got[0],
        "read_frame disagrees with FrameReader"
    );
    assert_eq!(
        got,
        parse(data, max),
        "the frame reader disagrees with a plain parse"
    );
    for r in &got {
        if let Read::Frame(body) = r {
            assert!(!body.is_empty() && body.len() <= max);
            check_msg(body);
        }
    }
});
