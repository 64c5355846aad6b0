//! The node's app firewall: one nftables table, `inet fluxnode`, that owns every rule, built
//! whole from the running apps (their addresses and published ports) with the `nftables`
//! crate's types and applied through Debian's `nft` in one transaction that deletes the
//! old table and adds the new one, so a rebuild (at boot, on every change) is idempotent.
//!
//! - Published ports: DNAT in the kernel, for packets to any of the node's own addresses
//!   (`fib daddr type local`), from outside (prerouting) and from the node itself (output);
//!   the app sees the client's real address. A connection from the node's loopback is
//!   masqueraded onto the bridge (with `route_localnet`, set by the caller).
//! - Outbound: masquerade from the bridge's subnet.
//! - Containers never reach the node itself (input from the bridge: replies only), another
//!   app's container (bridge to bridge: dropped; the bridge ports are isolated too), or a
//!   private range, except replies and the ranges `allow_private` lists.

use std::borrow::Cow;
use std::net::Ipv4Addr;

use nftables::batch::Batch;
use nftables::expr::{Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression};
use nftables::expr::{Payload, PayloadField, Prefix, SetItem, CT};
use nftables::schema::{Chain, NfListObject, Nftables, Rule, Table};
use nftables::stmt::{Match, NATFamily, Operator, Statement, NAT};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use super::ports::{PortMap, Proto};

pub const TABLE: &str = "fluxnode";

/// Ranges containers may not reach (besides replies), unless allowed.
pub const PRIVATE: [(Ipv4Addr, u8); 9] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
];

/// What the rules are made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub bridge: String,
    pub subnet: (Ipv4Addr, u8),
    /// Private ranges containers may reach anyway (`[apps] allow_private`).
    pub allow_private: Vec<(Ipv4Addr, u8)>,
    /// The node's resolvers: containers may ask them (port 53), wherever they are.
    pub dns: Vec<Ipv4Addr>,
    /// Each running app's address and published ports.
    pub apps: Vec<(Ipv4Addr, Vec<PortMap>)>,
}

fn s(v: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(v.to_owned()))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn field(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Borrowed(protocol),
            field: Cow::Borrowed(field),
        },
    )))
}

fn prefix((addr, len): (Ipv4Addr, u8)) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(&addr.to_string())),
        len: len as u32,
    }))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed(key),
        family: None,
        dir: None,
    }))
}

fn is(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

fn not(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::NEQ,
    })
}

fn within(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match {
        left,
        right,
        op: Operator::IN,
    })
}

fn replies() -> Statement<'static> {
    within(
        ct("state"),
        Expression::List(vec![s("established"), s("related")]),
    )
}

fn to_local() -> Statement<'static> {
    let mut flags = std::collections::HashSet::new();
    flags.insert(FibFlag::Daddr);
    is(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags,
        })),
        s("local"),
    )
}

fn chain(name: &'static str, kind: NfChainType, hook: NfHook, prio: i32) -> NfListObject<'static> {
    NfListObject::Chain(Chain {
        family: NfFamily::INet,
        table: Cow::Borrowed(TABLE),
        name: Cow::Borrowed(name),
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..Chain::default()
    })
}

fn rule(chain: &'static str, expr: Vec<Statement<'static>>) -> NfListObject<'static> {
    NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: Cow::Borrowed(TABLE),
        chain: Cow::Borrowed(chain),
        expr: Cow::Owned(expr),
        ..Rule::default()
    })
}

/// The DNAT rule of one published port.
/// IP protocol numbers: nft would look names up in /etc/protocols, which the node lacks.
const TCP: u32 = 6;
const UDP: u32 = 17;

fn publish(ip: Ipv4Addr, p: &PortMap) -> Vec<Statement<'static>> {
    let proto = if p.proto == Proto::Tcp { TCP } else { UDP };
    vec![
        to_local(),
        is(meta(MetaKey::L4proto), Expression::Number(proto)),
        is(
            field(if p.proto == Proto::Tcp { "tcp" } else { "udp" }, "dport"),
            Expression::Number(p.host as u32),
        ),
        Statement::DNAT(Some(NAT {
            addr: Some(s(&ip.to_string())),
            family: Some(NATFamily::IP),
            port: Some(Expression::Number(p.container as u32)),
            flags: None,
        })),
    ]
}

/// The whole table for `plan`, replacing whatever table of that name there was.
pub fn ruleset(plan: &Plan) -> Nftables<'static> {
    let br = || s(&plan.bridge);
    let table = || {
        NfListObject::Table(Table {
            family: NfFamily::INet,
            name: Cow::Borrowed(TABLE),
            handle: None,
        })
    };
    let mut b = Batch::new();
    // Add first so the delete never fails on a node without the table.
    b.add(table());
    b.delete(table());
    b.add(table());
    b.add(chain("input", NfChainType::Filter, NfHook::Input, 0));
    b.add(chain("forward", NfChainType::Filter, NfHook::Forward, 0));
    b.add(chain(
        "prerouting",
        NfChainType::NAT,
        NfHook::Prerouting,
        -100,
    ));
    b.add(chain("output", NfChainType::NAT, NfHook::Output, -100));
    b.add(chain(
        "postrouting",
        NfChainType::NAT,
        NfHook::Postrouting,
        100,
    ));

    // The node itself: containers get replies, nothing else.
    b.add(rule(
        "input",
        vec![
            is(meta(MetaKey::Iifname), br()),
            replies(),
            Statement::Accept(None),
        ],
    ));
    b.add(rule(
        "input",
        vec![is(meta(MetaKey::Iifname), br()), Statement::Drop(None)],
    ));

    b.add(rule("forward", vec![replies(), Statement::Accept(None)]));
    b.add(rule(
        "forward",
        vec![
            is(meta(MetaKey::Iifname), br()),
            is(meta(MetaKey::Oifname), br()),
            Statement::Drop(None),
        ],
    ));
    for server in &plan.dns {
        b.add(rule(
            "forward",
            vec![
                is(meta(MetaKey::Iifname), br()),
                is(field("ip", "daddr"), s(&server.to_string())),
                is(
                    meta(MetaKey::L4proto),
                    Expression::Named(NamedExpression::Set(vec![
                        SetItem::Element(Expression::Number(TCP)),
                        SetItem::Element(Expression::Number(UDP)),
                    ])),
                ),
                is(field("th", "dport"), Expression::Number(53)),
                Statement::Accept(None),
            ],
        ));
    }
    for allowed in &plan.allow_private {
        b.add(rule(
            "forward",
            vec![
                is(meta(MetaKey::Iifname), br()),
                is(field("ip", "daddr"), prefix(*allowed)),
                Statement::Accept(None),
            ],
        ));
    }
    let private: Vec<SetItem<'static>> = PRIVATE
        .iter()
        .map(|p| SetItem::Element(prefix(*p)))
        .collect();
    b.add(rule(
        "forward",
        vec![
            is(meta(MetaKey::Iifname), br()),
            is(
                field("ip", "daddr"),
                Expression::Named(NamedExpression::Set(private)),
            ),
            Statement::Drop(None),
        ],
    ));
    b.add(rule(
        "forward",
        vec![is(meta(MetaKey::Iifname), br()), Statement::Accept(None)],
    ));
    b.add(rule(
        "forward",
        vec![
            is(meta(MetaKey::Oifname), br()),
            within(ct("status"), s("dnat")),
            Statement::Accept(None),
        ],
    ));
    b.add(rule(
        "forward",
        vec![is(meta(MetaKey::Oifname), br()), Statement::Drop(None)],
    ));

    for (ip, ports) in &plan.apps {
        for p in ports {
            b.add(rule("prerouting", publish(*ip, p)));
            b.add(rule("output", publish(*ip, p)));
        }
    }
    b.add(rule(
        "postrouting",
        vec![
            is(field("ip", "saddr"), prefix(plan.subnet)),
            not(meta(MetaKey::Oifname), br()),
            Statement::Masquerade(None),
        ],
    ));
    b.add(rule(
        "postrouting",
        vec![
            is(
                field("ip", "saddr"),
                prefix((Ipv4Addr::new(127, 0, 0, 0), 8)),
            ),
            is(meta(MetaKey::Oifname), br()),
            Statement::Masquerade(None),
        ],
    ));
    b.to_nftables()
}

#[derive(Debug, thiserror::Error)]
#[error("nftables table inet {TABLE}: {0}")]
pub struct FirewallError(String);

/// Applies `ruleset` with the `nft` at `program` (extra `args` first, e.g. `-c` to check
/// without changing anything).
pub fn apply(ruleset: &Nftables, program: &str, args: &[&str]) -> Result<(), FirewallError> {
    use nftables::helper::NftablesError;
    nftables::helper::apply_ruleset_with_args(ruleset, Some(program), args.iter().copied()).map_err(
        |e| match e {
            // nft's own words say what it refused.
            NftablesError::NftFailed { stderr, .. } if !stderr.trim().is_empty() => {
                FirewallError(format!("{program}: {}", stderr.trim()))
            }
            other => FirewallError(other.to_string()),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            bridge: "fluxbr0".into(),
            subnet: (Ipv4Addr::new(10, 89, 0, 0), 24),
            allow_private: vec![(Ipv4Addr::new(10, 0, 2, 100), 32)],
            dns: vec![Ipv4Addr::new(10, 0, 2, 3)],
            apps: vec![(
                Ipv4Addr::new(10, 89, 0, 2),
                vec!["8080:80".parse().unwrap(), "5353:53/udp".parse().unwrap()],
            )],
        }
    }

    #[test]
    fn the_table_replaces_itself_and_publishes_each_port_both_ways() {
        let json = serde_json::to_value(ruleset(&plan())).unwrap();
        let cmds = json["nftables"].as_array().unwrap();
        assert!(cmds[0]["add"]["table"].is_object());
        assert!(cmds[1]["delete"]["table"].is_object());
        let text = json.to_string();
        let dnats = text
            .matches(r#""dnat":{"addr":"10.89.0.2","family":"ip","port":80}"#)
            .count();
        assert_eq!(dnats, 2, "prerouting and output: {text}");
        assert_eq!(text.matches(r#""port":53"#).count(), 2);
        assert!(
            text.contains(r#""fib":{"flags":["daddr"],"result":"type"}"#),
            "{text}"
        );
        assert!(text.contains(r#""masquerade":null"#), "{text}");
        assert!(
            text.contains(r#"{"prefix":{"addr":"10.0.2.100","len":32}}"#),
            "{text}"
        );
    }

    #[test]
    fn the_allowed_range_comes_before_the_private_drop() {
        let json = serde_json::to_value(ruleset(&plan())).unwrap();
        let forward: Vec<String> = json["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["add"]["rule"]["chain"] == "forward")
            .map(|c| c["add"]["rule"]["expr"].to_string())
            .collect();
        let allow = forward
            .iter()
            .position(|r| r.contains("10.0.2.100"))
            .unwrap();
        let drop = forward
            .iter()
            .position(|r| r.contains("192.168.0.0"))
            .unwrap();
        assert!(allow < drop);
    }

    /// The real `nft` (Debian's nftables, when installed) checks the table in a dry run
    /// (`nft -c`): nothing on this machine changes.
    #[test]
    fn debians_nft_takes_the_table() {
        if !std::path::Path::new("/usr/sbin/nft").exists()
            || !nix::unistd::Uid::effective().is_root()
        {
            eprintln!("no /usr/sbin/nft or not root: the dry run is left to the QEMU tests");
            return;
        }
        apply(&ruleset(&plan()), "/usr/sbin/nft", &["-c"]).unwrap();
    }
}
