//! PID1's side of the control socket: a non-blocking listener in the event loop, one buffer
//! per connection, request lines handed to the loop and replies written back. Only root
//! may connect: the socket is mode 0600 and the peer's uid is checked too.

use std::collections::HashMap;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use anyhow::{Context, Result};
use nix::sys::epoll::{Epoll, EpollEvent, EpollFlags};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use runtime::control::{Reply, MAX_LINE};
use tracing::warn;

/// Connection tokens start here in the loop's epoll.
pub const TOKEN_BASE: u64 = 1_000;

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
}

pub struct ControlServer {
    listener: UnixListener,
    conns: HashMap<u64, Conn>,
    next: u64,
}

impl ControlServer {
    pub fn bind(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
        }
        let _ = fs::remove_file(path);
        let listener =
            UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(ControlServer {
            listener,
            conns: HashMap::new(),
            next: TOKEN_BASE,
        })
    }

    pub fn listener(&self) -> &UnixListener {
        &self.listener
    }

    /// Accepts every waiting connection and watches it.
    pub fn accept(&mut self, epoll: &Epoll) {
        while let Ok((stream, _)) = self.listener.accept() {
            let root = getsockopt(&stream, PeerCredentials)
                .map(|c| c.uid() == 0)
                .unwrap_or(false);
            if !root || stream.set_nonblocking(true).is_err() {
                continue;
            }
            let token = self.next;
            self.next += 1;
            if epoll
                .add(stream.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, token))
                .is_ok()
            {
                self.conns.insert(
                    token,
                    Conn {
                        stream,
                        buf: Vec::new(),
                    },
                );
            }
        }
    }

    /// Reads what a connection sent; returns its complete lines. Closed or oversized
    /// connections are dropped.
    pub fn read_lines(&mut self, token: u64, epoll: &Epoll) -> Vec<String> {
        let Some(conn) = self.conns.get_mut(&token) else {
            return Vec::new();
        };
        let mut chunk = [0u8; 4096];
        let mut closed = false;
        loop {
            match conn.stream.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => conn.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        let mut lines = Vec::new();
        while let Some(end) = conn.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = conn.buf.drain(..=end).collect();
            lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        if conn.buf.len() > MAX_LINE {
            warn!("control: request longer than {MAX_LINE} bytes refused");
            self.reply(
                token,
                &Reply::error(format!("request longer than {MAX_LINE} bytes")),
            );
            closed = true;
        }
        if closed {
            if let Some(c) = self.conns.remove(&token) {
                let _ = epoll.delete(c.stream.as_fd());
            }
        }
        lines
    }

    /// Writes a reply line; a client that does not read it loses it.
    pub fn reply(&mut self, token: u64, reply: &Reply) {
        if let Some(conn) = self.conns.get_mut(&token) {
            let mut line =
                serde_json::to_string(reply).unwrap_or_else(|_| r#"{"ok":false}"#.into());
            line.push('\n');
            let _ = conn.stream.write_all(line.as_bytes());
        }
    }
}
