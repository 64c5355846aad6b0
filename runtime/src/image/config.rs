//! What an image's config says about running it, kept with each imported image: its
//! Entrypoint, Cmd, Env, WorkingDir, User, StopSignal and ExposedPorts; and how an app's
//! own settings combine with them, with Docker's semantics: an app's `--entrypoint`
//! replaces the image's and drops the image's Cmd; an app's command (the argv after `--`)
//! replaces the image's Cmd; the app's environment wins over the image's, key by key.

use oci_spec::image::ImageConfiguration;
use serde::{Deserialize, Serialize};

/// The default PATH when neither the image nor the app sets one (Docker's).
pub const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// `80/tcp`, `53/udp`: shown, not published (an app publishes with `--port`).
    #[serde(default)]
    pub exposed_ports: Vec<String>,
}

impl RunConfig {
    pub fn from_image(c: &ImageConfiguration) -> Self {
        let Some(c) = c.config() else {
            return RunConfig::default();
        };
        let mut exposed = c.exposed_ports().clone().unwrap_or_default();
        exposed.sort();
        RunConfig {
            entrypoint: c.entrypoint().clone().unwrap_or_default(),
            cmd: c.cmd().clone().unwrap_or_default(),
            env: c.env().clone().unwrap_or_default(),
            working_dir: c.working_dir().clone().unwrap_or_default(),
            user: c.user().clone().unwrap_or_default(),
            stop_signal: c.stop_signal().clone().filter(|s| !s.is_empty()),
            exposed_ports: exposed,
        }
    }

    /// The process's argv: `entrypoint` (the app's, when it gives one, else the image's)
    /// followed by the app's `command`, or else the image's Cmd (unless the app replaced
    /// the entrypoint, which drops the image's Cmd, as `docker run --entrypoint` does).
    pub fn argv(&self, entrypoint: Option<&[String]>, command: &[String]) -> Vec<String> {
        let (mut argv, cmd) = match entrypoint {
            Some(e) => (e.to_vec(), command.to_vec()),
            None if command.is_empty() => (self.entrypoint.clone(), self.cmd.clone()),
            None => (self.entrypoint.clone(), command.to_vec()),
        };
        argv.extend(cmd);
        argv
    }

    /// The environment: PATH unless set, the image's, then the app's (each key once, the
    /// app's value winning), and HOME from the user's passwd entry unless set.
    pub fn environment(&self, app_env: &[String], home: Option<&str>) -> Vec<String> {
        let mut env: Vec<String> = Vec::new();
        for e in self.env.iter().chain(app_env) {
            let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
            env.push(e.clone());
        }
        let has = |env: &[String], k: &str| env.iter().any(|e| e.starts_with(&format!("{k}=")));
        if !has(&env, "PATH") {
            env.insert(0, DEFAULT_PATH.to_owned());
        }
        if let (false, Some(h)) = (has(&env, "HOME"), home) {
            env.push(format!("HOME={h}"));
        }
        env
    }

    /// The working directory, `/` when the image gives none (or a relative one).
    pub fn cwd(&self) -> &str {
        if self.working_dir.starts_with('/') {
            &self.working_dir
        } else {
            "/"
        }
    }
}

/// A signal as an image config names it (`SIGTERM`, `TERM`, `15`).
pub fn parse_signal(s: &str) -> Option<nix::sys::signal::Signal> {
    use std::str::FromStr;
    if let Ok(n) = s.trim().parse::<i32>() {
        return nix::sys::signal::Signal::try_from(n).ok();
    }
    let up = s.trim().to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    nix::sys::signal::Signal::from_str(&name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    fn image() -> RunConfig {
        RunConfig {
            entrypoint: v(&["/bin/web"]),
            cmd: v(&["--port", "80"]),
            env: v(&["A=image", "PATH=/image/bin", "B=2"]),
            ..RunConfig::default()
        }
    }

    #[test]
    fn entrypoint_and_cmd_combine_as_docker_run_does() {
        let i = image();
        assert_eq!(i.argv(None, &[]), v(&["/bin/web", "--port", "80"]));
        assert_eq!(i.argv(None, &v(&["--debug"])), v(&["/bin/web", "--debug"]));
        assert_eq!(i.argv(Some(&v(&["/bin/sh"])), &[]), v(&["/bin/sh"]));
        assert_eq!(
            i.argv(Some(&v(&["/bin/sh"])), &v(&["-c", "id"])),
            v(&["/bin/sh", "-c", "id"])
        );
        // An empty entrypoint clears the image's.
        assert_eq!(i.argv(Some(&[]), &v(&["/bin/true"])), v(&["/bin/true"]));
        let cmd_only = RunConfig {
            cmd: v(&["/bin/sh"]),
            ..RunConfig::default()
        };
        assert_eq!(cmd_only.argv(None, &[]), v(&["/bin/sh"]));
    }

    #[test]
    fn the_app_environment_wins_key_by_key() {
        let env = image().environment(&v(&["A=app", "C=3"]), Some("/home/app"));
        assert_eq!(
            env,
            v(&["PATH=/image/bin", "B=2", "A=app", "C=3", "HOME=/home/app"])
        );
        let plain = RunConfig::default().environment(&[], None);
        assert_eq!(plain, v(&[DEFAULT_PATH]));
    }

    #[test]
    fn stop_signals_parse_in_every_spelling_and_workdirs_default_to_root() {
        for s in ["SIGQUIT", "QUIT", "quit", "3"] {
            assert_eq!(parse_signal(s), Some(Signal::SIGQUIT), "{s}");
        }
        assert_eq!(parse_signal("SIGNOPE"), None);
        assert_eq!(RunConfig::default().cwd(), "/");
        let w = RunConfig {
            working_dir: "/srv".into(),
            ..RunConfig::default()
        };
        assert_eq!(w.cwd(), "/srv");
    }

    #[test]
    fn an_image_config_is_read_with_every_field() {
        let json = r#"{"architecture":"amd64","os":"linux","config":{
            "Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"Env":["A=1"],
            "WorkingDir":"/srv","User":"app:app","StopSignal":"SIGUSR1",
            "ExposedPorts":{"8080/tcp":{},"53/udp":{}}},
            "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let c: ImageConfiguration = serde_json::from_str(json).unwrap();
        let r = RunConfig::from_image(&c);
        assert_eq!(r.entrypoint, v(&["/bin/sh", "-c"]));
        assert_eq!(r.user, "app:app");
        assert_eq!(r.stop_signal.as_deref(), Some("SIGUSR1"));
        assert_eq!(r.exposed_ports, v(&["53/udp", "8080/tcp"]));
        assert_eq!(r.cwd(), "/srv");
    }
}
