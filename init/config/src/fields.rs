//! The config fields one by one: each key's parser and check, so a bad value names itself.

use std::net::Ipv4Addr;

use toml::Value;

use super::{Config, NetMode};

fn found(v: &Value) -> String {
    v.to_string()
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("expected a boolean, found {}", found(v)))
}

fn string(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a string, found {}", found(v)))
}

fn one_of(v: &Value, allowed: &[&str]) -> Result<String, String> {
    let s = string(v)?;
    if allowed.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(format!(
            "expected one of {}, found {}",
            allowed.join(", "),
            found(v)
        ))
    }
}

fn ipv4(v: &Value) -> Result<Ipv4Addr, String> {
    string(v)?
        .parse()
        .map_err(|_| format!("expected an IPv4 address, found {}", found(v)))
}

fn socket_addr(v: &Value) -> Result<std::net::SocketAddr, String> {
    string(v)?.parse().map_err(|_| {
        format!(
            "expected an address like 127.0.0.1:16124, found {}",
            found(v)
        )
    })
}

/// Parses `a.b.c.d/prefix`.
pub fn cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    Some((addr.parse().ok()?, prefix))
}

fn hostname(v: &Value) -> Result<String, String> {
    let s = string(v)?;
    let ok = !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(s)
    } else {
        Err(format!(
            "expected a hostname (letters, digits, '-', at most 63), found {}",
            found(v)
        ))
    }
}

/// A number or a string: as text, so `2G` and `2147483648` both work.
fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn size(v: &Value) -> Result<u64, String> {
    runtime::admission::parse_bytes(&text_of(v))
        .ok_or_else(|| format!("expected a size like 2G or 512M, found {}", found(v)))
}

fn cores(v: &Value) -> Result<u64, String> {
    runtime::admission::parse_cores(&text_of(v))
        .ok_or_else(|| format!("expected cores like 1 or 0.5, found {}", found(v)))
}

/// Sets `[section] key` from a TOML value, or says why not.
pub fn set(c: &mut Config, section: &str, key: &str, v: Value) -> Result<(), String> {
    match (section, key) {
        ("node", "hostname") => c.hostname = hostname(&v)?,
        ("log", "level") => c.log_level = one_of(&v, &["error", "warn", "info", "debug", "trace"])?,
        ("storage", "grow") => c.storage.grow = boolean(&v)?,
        ("bench", "quick") => c.bench.quick = boolean(&v)?,
        ("chain", "enabled") => c.chain.enabled = boolean(&v)?,
        ("chain", "devnet") => c.chain.devnet = boolean(&v)?,
        ("chain", "rpc_listen") => c.chain.rpc_listen = socket_addr(&v)?,
        ("chain", "owner") => {
            c.chain.owner = Some(string(&v)?.parse().map_err(|e| {
                format!("expected an owner address like fx followed by 40 hex digits: {e}")
            })?)
        }
        ("apps", "reserve_cpu") => c.reserve.cpu_millis = cores(&v)?,
        ("apps", "reserve_ram") => c.reserve.ram_bytes = size(&v)?,
        ("apps", "reserve_disk") => c.reserve.disk_bytes = size(&v)?,
        ("apps", "allow_private") => {
            let items = match &v {
                Value::Array(a) => a.clone(),
                one => vec![one.clone()],
            };
            c.allow_private = items
                .iter()
                .map(|i| {
                    string(i).and_then(|s| {
                        cidr(&s).ok_or_else(|| {
                            format!("expected ranges like 10.0.2.100/32, found {}", found(i))
                        })
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        ("bench", "enabled") => c.bench.enabled = boolean(&v)?,
        ("watchdog", "enabled") => c.watchdog.enabled = boolean(&v)?,
        ("watchdog", "device") => c.watchdog.device = string(&v)?.into(),
        ("update", "health_secs") => {
            let n = v
                .as_integer()
                .filter(|n| (10..=3600).contains(n))
                .ok_or_else(|| format!("expected seconds from 10 to 3600, found {}", found(&v)))?;
            c.update.health_secs = n as u64;
        }
        ("watchdog", "timeout") => {
            let n = v
                .as_integer()
                .filter(|n| (1..=3600).contains(n))
                .ok_or_else(|| format!("expected seconds from 1 to 3600, found {}", found(&v)))?;
            c.watchdog.timeout_s = Some(n as u32);
        }
        ("network", "mode") => {
            c.network.mode = match one_of(&v, &["dhcp", "static", "off"])?.as_str() {
                "static" => NetMode::Static,
                "off" => NetMode::Off,
                _ => NetMode::Dhcp,
            }
        }
        ("network", "address") => {
            let s = string(&v)?;
            c.network.address = Some(cidr(&s).ok_or_else(|| {
                format!(
                    "expected an address like 192.0.2.10/24, found {}",
                    found(&v)
                )
            })?);
        }
        ("network", "gateway") => c.network.gateway = Some(ipv4(&v)?),
        ("network", "dns") => {
            let list = v
                .as_array()
                .ok_or_else(|| format!("expected a list of addresses, found {}", found(&v)))?;
            c.network.dns = list.iter().map(ipv4).collect::<Result<_, _>>()?;
        }
        _ => return Err("unknown key".into()),
    }
    Ok(())
}

/// A kernel command-line value as TOML: `true`, `30` and `"x"` keep their types; anything
/// else is a string. A comma list becomes a list of strings (`dns=1.1.1.1,9.9.9.9`).
pub fn cmdline_value(raw: &str) -> Value {
    if let Ok(mut t) = format!("v = {raw}").parse::<toml::Table>() {
        if let Some(v) = t.remove("v") {
            return v;
        }
    }
    if raw.contains(',') {
        return Value::Array(
            raw.split(',')
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        );
    }
    Value::String(raw.to_owned())
}
