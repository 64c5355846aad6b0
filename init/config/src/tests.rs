use super::*;

const FILE: &str = r#"
[node]
hostname = "rack7-node3"

[bench]
quick = "yes"

[watchdog]
timeout = 12
colour = "blue"

[network]
mode = "static"
address = "192.0.2.10/24"
gateway = "192.0.2.1"
dns = ["192.0.2.53"]

[[service]]
name = "metrics"
argv = ["/usr/bin/metrics", "--port", "9100"]
restart = "on-failure"

[[service]]
name = "broken"
argv = ["relative/path"]
"#;

#[test]
fn defaults_boot_a_node_with_dhcp_and_a_watchdog() {
    let c = Config::default();
    assert_eq!(c.network.mode, NetMode::Dhcp);
    assert!(c.watchdog.enabled && c.storage.grow);
    assert!(c.services.is_empty());
}

#[test]
fn bad_fields_are_named_with_their_source_and_the_rest_applies() {
    let mut c = Config::default();
    let diags = c.apply_toml("/data/etc/fluxnode.toml", FILE);
    let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
    assert!(
        text.contains(
            &r#"config /data/etc/fluxnode.toml: [bench] quick: expected a boolean, found "yes""#
                .to_owned()
        ),
        "{text:#?}"
    );
    assert!(
        text.contains(&"config /data/etc/fluxnode.toml: [watchdog] colour: unknown key".to_owned()),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.contains("[[service]] #2") && t.contains("absolute path")),
        "{text:#?}"
    );
    assert_eq!(diags.len(), 3, "{text:#?}");
    assert_eq!(c.hostname, "rack7-node3");
    assert!(
        !c.bench.quick,
        "the bad value is skipped, the default stays"
    );
    assert_eq!(c.watchdog.timeout_s, Some(12));
    assert_eq!(c.network.mode, NetMode::Static);
    assert_eq!(c.network.address, Some(("192.0.2.10".parse().unwrap(), 24)));
    assert_eq!(
        c.network.dns,
        vec!["192.0.2.53".parse::<Ipv4Addr>().unwrap()]
    );
    assert_eq!(c.services.len(), 1);
    assert_eq!(c.services[0].restart, Restart::OnFailure);
}

#[test]
fn the_command_line_wins_over_the_file() {
    let mut c = Config::default();
    c.apply_toml("f", FILE);
    let words = [
        ("console", "ttyS0"),
        ("fluxnode.selftest", "poweroff"),
        ("fluxnode.node.hostname", "override"),
        ("fluxnode.watchdog.enabled", "false"),
        ("fluxnode.network.dns", "1.1.1.1,9.9.9.9"),
        ("fluxnode.service.flap", "/init selftest flap"),
        ("fluxnode.update.health_secs", "15"),
        ("fluxnode.test.fail_health", "1"),
    ];
    let diags = c.apply_cmdline(words.into_iter());
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(c.update.health_secs, 15);
    assert_eq!(c.hostname, "override");
    assert!(!c.watchdog.enabled);
    assert_eq!(c.network.dns.len(), 2);
    assert_eq!(
        c.services.last().unwrap().argv,
        ["/init", "selftest", "flap"]
    );
}

#[test]
fn bad_command_line_keys_are_named() {
    let mut c = Config::default();
    let words = [
        ("fluxnode.bench.quick", "maybe"),
        ("fluxnode.nosuch", "1"),
        ("fluxnode.log.level", "loud"),
        ("fluxnode.update.health_secs", "5"),
    ];
    let text: Vec<String> = c
        .apply_cmdline(words.into_iter())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        text,
        [
            r#"kernel command line: fluxnode.bench.quick: expected a boolean, found "maybe""#,
            "kernel command line: fluxnode.nosuch: expected fluxnode.<section>.<key>=<value>",
            r#"kernel command line: fluxnode.log.level: expected one of error, warn, info, debug, trace, found "loud""#,
            "kernel command line: fluxnode.update.health_secs: expected seconds from 10 to 3600, found 5",
        ]
    );
    assert_eq!(c, Config::default());
}

#[test]
fn a_file_that_is_not_toml_is_skipped_whole_with_a_reason() {
    let mut c = Config::default();
    let diags = c.apply_toml("f.toml", "[node\nhostname=");
    assert_eq!(diags.len(), 1);
    assert!(
        diags[0]
            .to_string()
            .starts_with("config f.toml: not valid TOML"),
        "{}",
        diags[0]
    );
    assert_eq!(c, Config::default());
}

#[test]
fn the_app_reserve_takes_sizes_and_cores_from_file_and_command_line() {
    let mut c = Config::default();
    assert_eq!(c.reserve, runtime::admission::FLUX_RESERVE);
    let diags = c.apply_cmdline(
        [
            ("fluxnode.apps.reserve_cpu", "0.25"),
            ("fluxnode.apps.reserve_ram", "128M"),
            ("fluxnode.apps.reserve_disk", "lots"),
        ]
        .into_iter(),
    );
    assert_eq!(
        (c.reserve.cpu_millis, c.reserve.ram_bytes),
        (250, 128 << 20)
    );
    assert_eq!(
        c.reserve.disk_bytes,
        runtime::admission::FLUX_RESERVE.disk_bytes
    );
    assert_eq!(
        diags[0].to_string(),
        r#"kernel command line: fluxnode.apps.reserve_disk: expected a size like 2G or 512M, found "lots""#
    );
}

#[test]
fn the_chain_service_is_on_by_default_and_a_devnet_is_asked_for() {
    let mut c = Config::default();
    assert!(c.chain.enabled && !c.chain.devnet);
    let diags = c.apply_cmdline([("fluxnode.chain.devnet", "true")].into_iter());
    assert!(diags.is_empty(), "{diags:?}");
    assert!(c.chain.devnet);
}

#[test]
fn json_rpc_listens_on_this_machine_only_until_opened() {
    let mut c = Config::default();
    assert_eq!(c.chain.rpc_listen.to_string(), "127.0.0.1:16124");
    let diags = c.apply_toml("t.toml", "[chain]\nrpc_listen = \"0.0.0.0:16124\"\n");
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(c.chain.rpc_listen.to_string(), "0.0.0.0:16124");
    let diags = c.apply_cmdline([("fluxnode.chain.rpc_listen", "everywhere")].into_iter());
    assert_eq!(
        diags[0].to_string(),
        r#"kernel command line: fluxnode.chain.rpc_listen: expected an address like 127.0.0.1:16124, found "everywhere""#
    );
    assert_eq!(c.chain.rpc_listen.to_string(), "0.0.0.0:16124");
}

#[test]
fn the_owner_a_node_confirms_for_comes_from_file_or_command_line() {
    let mut c = Config::default();
    assert_eq!(c.chain.owner, None);
    let owner = "fx00112233445566778899aabbccddeeff00112233";
    let diags = c.apply_toml("t.toml", &format!("[chain]\nowner = \"{owner}\"\n"));
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(c.chain.owner.map(|a| a.to_string()).as_deref(), Some(owner));
    let diags = c.apply_cmdline([("fluxnode.chain.owner", "fx12")].into_iter());
    assert!(
        diags[0]
            .to_string()
            .starts_with("kernel command line: fluxnode.chain.owner: expected an owner address"),
        "{diags:?}"
    );
    assert_eq!(c.chain.owner.map(|a| a.to_string()).as_deref(), Some(owner));
}

#[test]
fn private_ranges_apps_may_reach_come_from_file_and_command_line() {
    let mut c = Config::default();
    assert!(c.allow_private.is_empty());
    let diags = c.apply_toml(
        "t.toml",
        "[apps]\nallow_private = [\"10.0.2.100/32\", \"192.168.7.0/24\"]\n",
    );
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(
        c.allow_private,
        [
            (Ipv4Addr::new(10, 0, 2, 100), 32),
            (Ipv4Addr::new(192, 168, 7, 0), 24)
        ]
    );
    let diags = c.apply_cmdline([("fluxnode.apps.allow_private", "10.0.2.100/32")].into_iter());
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(c.allow_private, [(Ipv4Addr::new(10, 0, 2, 100), 32)]);
    let diags = c.apply_cmdline([("fluxnode.apps.allow_private", "10.0.2.100")].into_iter());
    assert!(
        diags[0]
            .to_string()
            .contains("expected ranges like 10.0.2.100/32"),
        "{diags:?}"
    );
}
