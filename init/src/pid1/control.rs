//! PID1's side of the control socket: a non-blocking listener in the event loop, an input
//! and an output buffer per connection, request lines handed to the loop and replies
//! written back. A reply the socket cannot take at once waits in the output buffer and is
//! finished when epoll says the socket is writable, so a reply of any size arrives whole
//! and the loop never blocks on a slow reader (one that lets more than `MAX_OUT` wait is
//! dropped). Only root may connect: the socket is mode 0600 and the peer's uid is checked.

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

/// The most reply bytes that may wait for one slow reader.
const MAX_OUT: usize = 64 << 20;

struct Conn {
    stream: UnixStream,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// The connection is watched for EPOLLOUT (output is waiting).
    writing: bool,
    /// The client closed its side (or sent too much): the connection ends once its
    /// replies are written.
    eof: bool,
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
                        out: Vec::new(),
                        writing: false,
                        eof: false,
                    },
                );
            }
        }
    }

    /// Reads what a connection sent; returns its complete lines. A closed or oversized
    /// connection is marked to end once its replies are out ([`ControlServer::settle`]).
    pub fn read_lines(&mut self, token: u64) -> Vec<String> {
        let Some(conn) = self.conns.get_mut(&token) else {
            return Vec::new();
        };
        if conn.eof {
            return Vec::new();
        }
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
            let line = format!(
                "{}\n",
                serde_json::to_string(&Reply::error(format!(
                    "request longer than {MAX_LINE} bytes"
                )))
                .unwrap_or_default()
            );
            let _ = conn.stream.write(line.as_bytes());
            closed = true;
        }
        conn.eof |= closed;
        lines
    }

    /// After the replies to a connection's lines are queued: one whose client is gone is
    /// dropped once nothing waits to be written (until then only EPOLLOUT is watched).
    pub fn settle(&mut self, token: u64, epoll: &Epoll) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if !conn.eof {
            return;
        }
        if conn.out.is_empty() {
            self.drop_conn(token, epoll);
        } else {
            let mut ev = EpollEvent::new(EpollFlags::EPOLLOUT, token);
            let _ = epoll.modify(conn.stream.as_fd(), &mut ev);
            conn.writing = true;
        }
    }

    fn drop_conn(&mut self, token: u64, epoll: &Epoll) {
        if let Some(c) = self.conns.remove(&token) {
            let _ = epoll.delete(c.stream.as_fd());
        }
    }

    /// Queues a reply line and writes what the socket takes now; the rest is written when
    /// the socket becomes writable ([`ControlServer::flush`]).
    pub fn reply(&mut self, token: u64, reply: &Reply, epoll: &Epoll) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let line = serde_json::to_string(reply).unwrap_or_else(|_| r#"{"ok":false}"#.into());
        if conn.out.len() + line.len() > MAX_OUT {
            warn!("control: a client left {MAX_OUT} bytes of replies unread; dropped");
            self.drop_conn(token, epoll);
            return;
        }
        conn.out.extend_from_slice(line.as_bytes());
        conn.out.push(b'\n');
        self.flush(token, epoll);
    }

    /// Writes waiting output until the socket would block; watches for EPOLLOUT while
    /// some is left.
    pub fn flush(&mut self, token: u64, epoll: &Epoll) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let mut broken = false;
        while !conn.out.is_empty() {
            match conn.stream.write(&conn.out) {
                Ok(0) => {
                    broken = true;
                    break;
                }
                Ok(n) => {
                    conn.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        if broken || (conn.eof && conn.out.is_empty()) {
            self.drop_conn(token, epoll);
            return;
        }
        if conn.eof {
            return;
        }
        let want = !conn.out.is_empty();
        if want != conn.writing {
            let flags = if want {
                EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT
            } else {
                EpollFlags::EPOLLIN
            };
            let mut ev = EpollEvent::new(flags, token);
            if epoll.modify(conn.stream.as_fd(), &mut ev).is_ok() {
                conn.writing = want;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::epoll::{EpollCreateFlags, EpollTimeout};
    use std::io::{BufRead, BufReader};

    /// Runs the server's side of the loop (accept, read, reply, flush on EPOLLOUT) until
    /// `done` says so.
    fn serve(server: &mut ControlServer, epoll: &Epoll, big: &Reply, done: impl Fn() -> bool) {
        let mut events = [EpollEvent::empty(); 8];
        while !done() {
            let n = epoll.wait(&mut events, EpollTimeout::from(50u16)).unwrap();
            for ev in &events[..n] {
                let token = ev.data();
                if token == 1 {
                    server.accept(epoll);
                    continue;
                }
                if ev.events().contains(EpollFlags::EPOLLOUT) {
                    server.flush(token, epoll);
                }
                for _line in server.read_lines(token) {
                    server.reply(token, big, epoll);
                }
                server.settle(token, epoll);
            }
        }
    }

    #[test]
    fn a_reply_bigger_than_the_socket_buffer_arrives_whole_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).unwrap();
        epoll
            .add(
                server.listener().as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, 1),
            )
            .unwrap();
        // 8 MiB of data: far more than a unix socket takes at once.
        let big = Reply::ok(Some(serde_json::Value::String("x".repeat(8 << 20))));
        let got = std::sync::Arc::new(std::sync::Mutex::new(None));
        let client = {
            let got = got.clone();
            let path = path.clone();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&path).unwrap();
                s.write_all(b"{\"request\":\"status\"}\n").unwrap();
                // A slow reader: the server must not wait for it.
                std::thread::sleep(std::time::Duration::from_millis(200));
                let mut line = String::new();
                BufReader::new(&s).read_line(&mut line).unwrap();
                *got.lock().unwrap() = Some(line);
            })
        };
        serve(&mut server, &epoll, &big, || got.lock().unwrap().is_some());
        client.join().unwrap();
        let line = got.lock().unwrap().take().unwrap();
        let back: Reply = serde_json::from_str(&line).unwrap();
        assert_eq!(back, big);
    }
}
