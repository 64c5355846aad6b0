//! A small QMP client: the greeting, `qmp_capabilities`, commands, and the events QEMU
//! sends in between (SHUTDOWN tells why the VM stopped).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("qmp {0}: {1}")]
    Io(String, std::io::Error),
    #[error("qmp: bad reply {0}")]
    Protocol(String),
    #[error("qmp {command}: {error}")]
    Command { command: String, error: String },
    #[error("qmp: no {0} event within {1:?}")]
    Timeout(String, Duration),
}

pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    /// Events received so far, in order.
    pub events: Vec<Value>,
}

impl Qmp {
    /// Connects (retrying while QEMU starts) and negotiates capabilities.
    pub fn connect(path: &Path, wait: Duration) -> Result<Self, QmpError> {
        let started = Instant::now();
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if started.elapsed() > wait => {
                    return Err(QmpError::Io(path.display().to_string(), e))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let writer = stream
            .try_clone()
            .map_err(|e| QmpError::Io("clone".into(), e))?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
            events: Vec::new(),
        };
        let greeting = qmp.read_message(Some(wait))?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(greeting.to_string()));
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn read_message(&mut self, timeout: Option<Duration>) -> Result<Value, QmpError> {
        self.reader
            .get_ref()
            .set_read_timeout(timeout)
            .map_err(|e| QmpError::Io("timeout".into(), e))?;
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .map_err(|e| QmpError::Io("read".into(), e))?;
        if n == 0 {
            return Err(QmpError::Protocol("connection closed".into()));
        }
        serde_json::from_str(&line).map_err(|_| QmpError::Protocol(line))
    }

    /// Runs a command and returns its `return` value; events seen meanwhile are kept.
    pub fn execute(&mut self, command: &str, args: Value) -> Result<Value, QmpError> {
        let msg = json!({ "execute": command, "arguments": args });
        writeln!(self.writer, "{msg}").map_err(|e| QmpError::Io(command.into(), e))?;
        loop {
            let reply = self.read_message(Some(Duration::from_secs(30)))?;
            if reply.get("event").is_some() {
                self.events.push(reply);
            } else if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            } else if let Some(err) = reply.get("error") {
                return Err(QmpError::Command {
                    command: command.into(),
                    error: err.to_string(),
                });
            } else {
                return Err(QmpError::Protocol(reply.to_string()));
            }
        }
    }

    /// Waits for an event by name (or returns one already received).
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Result<Value, QmpError> {
        if let Some(ev) = self.events.iter().find(|e| e["event"] == name) {
            return Ok(ev.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(QmpError::Timeout(name.into(), timeout));
            }
            match self.read_message(Some(left)) {
                Ok(msg) => {
                    self.events.push(msg.clone());
                    if msg["event"] == name {
                        return Ok(msg);
                    }
                }
                Err(QmpError::Io(_, e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(QmpError::Timeout(name.into(), timeout))
                }
                Err(e) => return Err(e),
            }
        }
    }
}
