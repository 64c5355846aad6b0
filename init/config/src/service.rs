//! Operator services from config: `[[service]]` tables in the file, or
//! `fluxnode.service.<name>=<argv>` on the kernel command line.

use serde::Deserialize;
use toml::Value;

use super::{Config, Diagnostic};

/// When a service that exited is started again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

/// One supervised service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub name: String,
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default = "always")]
    pub restart: Restart,
}

fn always() -> Restart {
    Restart::Always
}

fn check(spec: &ServiceSpec) -> Result<(), String> {
    if spec.name.is_empty()
        || !spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "name {:?}: use letters, digits, '-' and '_'",
            spec.name
        ));
    }
    if spec.argv.first().is_none_or(|a| !a.starts_with('/')) {
        return Err(format!(
            "service {}: argv must start with an absolute path",
            spec.name
        ));
    }
    if let Some(bad) = spec.env.iter().find(|e| !e.contains('=')) {
        return Err(format!(
            "service {}: env entry {bad:?} is not KEY=VALUE",
            spec.name
        ));
    }
    Ok(())
}

fn add(c: &mut Config, spec: ServiceSpec) {
    c.services.retain(|s| s.name != spec.name);
    c.services.push(spec);
}

pub fn apply_toml(c: &mut Config, source: &str, value: Value) -> Vec<Diagnostic> {
    let diag = |field: String, message: String| Diagnostic {
        source: source.to_owned(),
        field,
        message,
    };
    let Value::Array(entries) = value else {
        return vec![diag("service".into(), "expected [[service]] tables".into())];
    };
    let mut out = Vec::new();
    for (i, entry) in entries.into_iter().enumerate() {
        let field = format!("[[service]] #{}", i + 1);
        match ServiceSpec::deserialize(entry).map_err(|e| e.message().to_owned()) {
            Ok(spec) => match check(&spec) {
                Ok(()) => add(c, spec),
                Err(m) => out.push(diag(field, m)),
            },
            Err(m) => out.push(diag(field, m)),
        }
    }
    out
}

pub fn apply_cmdline(c: &mut Config, name: &str, argv: &str) -> Result<(), String> {
    let spec = ServiceSpec {
        name: name.to_owned(),
        argv: argv.split_whitespace().map(str::to_owned).collect(),
        env: Vec::new(),
        restart: Restart::Always,
    };
    check(&spec)?;
    add(c, spec);
    Ok(())
}
