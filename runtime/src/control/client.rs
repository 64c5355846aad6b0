//! The typed blocking client of PID1's control socket: one method per request, each
//! returning its reply type from [`super::replies`], so no caller reads JSON by key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::replies::{AppList, AppStats, AppStopping, AppSummary, AppsResumed, Staged, Status};
use super::{call, ControlError, Request, SOCKET};
use crate::bench::report::Signed;
use crate::spec::AppSpec;

/// A client of one control socket, with a timeout for each call.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    timeout: Duration,
}

impl Default for Client {
    /// The node's socket, 10 s per call.
    fn default() -> Self {
        Client::new(Path::new(SOCKET), Duration::from_secs(10))
    }
}

impl Client {
    pub fn new(socket: &Path, timeout: Duration) -> Self {
        Client {
            socket: socket.to_owned(),
            timeout,
        }
    }

    /// The same client with another timeout (staging an update takes longer).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `req`; a refusal becomes [`ControlError::Refused`], and the reply's data is
    /// read as a `T`.
    pub fn request<T: DeserializeOwned>(&self, req: &Request) -> Result<T, ControlError> {
        let reply = call(&self.socket, req, self.timeout)?;
        let path = || self.socket.display().to_string();
        if !reply.ok {
            return Err(ControlError::Refused {
                path: path(),
                why: reply.error.unwrap_or_else(|| "refused".into()),
            });
        }
        let data = reply.data.unwrap_or(serde_json::Value::Null);
        serde_json::from_value(data.clone()).map_err(|e| ControlError::BadReply {
            path: path(),
            line: format!("{e}: {data}"),
        })
    }

    /// Sends a request whose reply carries no data.
    fn done(&self, req: &Request) -> Result<(), ControlError> {
        self.request::<Option<serde_json::Value>>(req).map(|_| ())
    }

    pub fn status(&self) -> Result<Status, ControlError> {
        self.request(&Request::Status)
    }

    pub fn bench_latest(&self) -> Result<Signed, ControlError> {
        self.request(&Request::BenchLatest)
    }

    pub fn service_restart(&self, name: &str) -> Result<(), ControlError> {
        self.done(&Request::ServiceRestart { name: name.into() })
    }

    pub fn shutdown(&self) -> Result<(), ControlError> {
        self.done(&Request::Shutdown)
    }

    pub fn reboot(&self) -> Result<(), ControlError> {
        self.done(&Request::Reboot)
    }

    pub fn app_run(&self, app: AppSpec) -> Result<AppSummary, ControlError> {
        self.request(&Request::AppRun { app })
    }

    pub fn app_stop(&self, name: &str, purge: bool) -> Result<AppStopping, ControlError> {
        self.request(&Request::AppStop {
            name: name.into(),
            purge,
        })
    }

    pub fn app_list(&self) -> Result<AppList, ControlError> {
        self.request(&Request::AppList)
    }

    pub fn app_stats(&self, name: &str, samples: usize) -> Result<AppStats, ControlError> {
        self.request(&Request::AppStats {
            name: name.into(),
            samples: Some(samples),
        })
    }

    pub fn app_resume(&self) -> Result<AppsResumed, ControlError> {
        self.request(&Request::AppResume)
    }

    pub fn update_stage(
        &self,
        path: &str,
        force: bool,
        reboot: bool,
    ) -> Result<Staged, ControlError> {
        self.request(&Request::UpdateStage {
            path: path.into(),
            force,
            reboot,
        })
    }
}
