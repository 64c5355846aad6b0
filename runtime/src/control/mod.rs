//! The PID1 control protocol: one JSON request and one JSON reply per line over the unix
//! socket `/run/fluxnode/control.sock` (mode 0600, root only). PID1 serves it; the chain node
//! and `fluxnode ctl` call it through the typed blocking [`Client`]; every reply's data is
//! a type of [`replies`].

mod client;
pub mod replies;

pub use client::Client;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub const SOCKET: &str = "/run/fluxnode/control.sock";
/// The longest request line PID1 reads; longer ones are refused.
pub const MAX_LINE: usize = 64 * 1024;

/// What a client asks PID1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request")]
pub enum Request {
    /// Phases, services with restarts, network, storage.
    #[serde(rename = "status")]
    Status,
    #[serde(rename = "service.restart")]
    ServiceRestart { name: String },
    /// The latest signed benchmark report.
    #[serde(rename = "bench.latest")]
    BenchLatest,
    #[serde(rename = "shutdown")]
    Shutdown,
    #[serde(rename = "reboot")]
    Reboot,
    /// Admit and run an app (replacing one of the same name); kept in the desired state
    /// on /data, so it runs again after a reboot.
    #[serde(rename = "app.run")]
    AppRun { app: crate::spec::AppSpec },
    /// Stop an app and forget it; `purge` also removes what it wrote.
    #[serde(rename = "app.stop")]
    AppStop {
        name: String,
        #[serde(default)]
        purge: bool,
    },
    /// Every app with its state, restarts, last exit and latest sample, and node totals.
    #[serde(rename = "app.list", alias = "apps.list")]
    AppList,
    /// Verify an update bundle (a path on the node) and stage it on the ESP; PID1 replies
    /// when staging has ended, then reboots into the new version if `reboot`.
    #[serde(rename = "update.stage")]
    UpdateStage {
        path: String,
        #[serde(default)]
        force: bool,
        #[serde(default = "yes")]
        reboot: bool,
    },
    /// Starts the apps held on this boot (after unhealthy boots in a row).
    #[serde(rename = "app.resume")]
    AppResume,
    /// One app's recent samples (the last `samples`, default 12: one minute).
    #[serde(rename = "app.stats")]
    AppStats {
        name: String,
        #[serde(default)]
        samples: Option<usize>,
    },
}

fn yes() -> bool {
    true
}

/// PID1's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Reply {
    pub fn ok(data: Option<serde_json::Value>) -> Self {
        Reply {
            ok: true,
            error: None,
            data,
        }
    }
    pub fn error(msg: impl Into<String>) -> Self {
        Reply {
            ok: false,
            error: Some(msg.into()),
            data: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control socket {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("control socket {path}: bad reply {line:?}")]
    BadReply { path: String, line: String },
    #[error("{why}")]
    Refused { path: String, why: String },
}

/// Parses one request line; the error says what was wrong with it.
pub fn parse_request(line: &str) -> Result<Request, String> {
    serde_json::from_str(line).map_err(|e| format!("bad request: {e}"))
}

/// Sends one request and waits (up to `timeout`) for its reply.
pub fn call(socket: &Path, request: &Request, timeout: Duration) -> Result<Reply, ControlError> {
    let path = socket.display().to_string();
    let io = |source| ControlError::Io {
        path: path.clone(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut line = serde_json::to_string(request).expect("requests always serialize");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(io)?;
    serde_json::from_str(&reply).map_err(|_| ControlError::BadReply { path, line: reply })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_a_stable_wire_form() {
        let r = Request::ServiceRestart {
            name: "chain".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"request":"service.restart","name":"chain"}"#
        );
        assert_eq!(
            parse_request(r#"{"request":"status"}"#),
            Ok(Request::Status)
        );
        assert_eq!(
            parse_request(r#"{"request":"apps.list"}"#),
            Ok(Request::AppList)
        );
        assert_eq!(
            parse_request(r#"{"request":"app.stop","name":"web"}"#),
            Ok(Request::AppStop {
                name: "web".into(),
                purge: false
            })
        );
        assert_eq!(
            parse_request(r#"{"request":"update.stage","path":"/data/u.bundle"}"#),
            Ok(Request::UpdateStage {
                path: "/data/u.bundle".into(),
                force: false,
                reboot: true
            })
        );
        assert!(parse_request(r#"{"request":"format-disk"}"#)
            .unwrap_err()
            .starts_with("bad request"));
    }

    #[test]
    fn a_client_and_a_server_talk_over_a_real_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).unwrap();
            assert_eq!(parse_request(&line), Ok(Request::Reboot));
            let reply =
                serde_json::to_string(&Reply::ok(Some(serde_json::json!({"rebooting": true}))))
                    .unwrap();
            (&conn).write_all(format!("{reply}\n").as_bytes()).unwrap();
        });
        let reply = call(&path, &Request::Reboot, Duration::from_secs(5)).unwrap();
        server.join().unwrap();
        assert!(reply.ok);
        assert_eq!(reply.data.unwrap()["rebooting"], true);
    }
}
