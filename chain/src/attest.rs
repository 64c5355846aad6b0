//! Benchmark attestations: a node's confirm carries its signed benchmark report, the file
//! `fluxnode bench` writes (schema `fluxnode-bench/1`: the Ed25519 signature covers the
//! compact JSON of `report`, and the file holds it pretty-printed beside `public_key` and
//! `signature`). The chain checks it without knowing the report's types: the report's own
//! text, with the whitespace that pretty printing adds taken out, is exactly what was
//! signed; the key must be the node's; the verdict's tier is what the node earned.

use ring::signature::{UnparsedPublicKey, ED25519};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::tx::{PublicKey, Tier};

pub const SCHEMA: &str = "fluxnode-bench/1";

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(borrow)]
    report: &'a RawValue,
    public_key: String,
    signature: String,
}

/// JSON text without the whitespace outside strings (the compact form of the same value,
/// keys in the same order).
fn minify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

/// The tier a signed report gives `node` (None: it passes no tier), or why it is refused.
pub fn verify_report(bytes: &[u8], node: &PublicKey) -> Result<Option<Tier>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "the benchmark report is not UTF-8")?;
    let doc: Doc = serde_json::from_str(text).map_err(|e| format!("benchmark report: {e}"))?;
    let report: serde_json::Value =
        serde_json::from_str(doc.report.get()).map_err(|e| format!("benchmark report: {e}"))?;
    if report["schema"] != SCHEMA {
        return Err(format!("benchmark report: schema is not {SCHEMA}"));
    }
    if doc.public_key != hex::encode(node) {
        return Err("benchmark report: signed by another key than the node's".into());
    }
    let sig = hex::decode(&doc.signature).map_err(|_| "benchmark report: signature is not hex")?;
    UnparsedPublicKey::new(&ED25519, node)
        .verify(minify(doc.report.get()).as_bytes(), &sig)
        .map_err(|_| "benchmark report: bad signature".to_owned())?;
    Ok(match report["verdict"]["tier"].as_str() {
        Some("cumulus") => Some(Tier::Cumulus),
        Some("nimbus") => Some(Tier::Nimbus),
        Some("stratus") => Some(Tier::Stratus),
        _ => None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::signature::KeyPair;

    /// A real report, signed the way `fluxnode bench` signs it (runtime's own code).
    pub fn report(tier: Option<&str>, key: &ring::signature::Ed25519KeyPair) -> Vec<u8> {
        let json = serde_json::json!({
            "schema": SCHEMA, "version": "0.1.0", "created_unix": 1_800_000_000u64, "quick": false,
            "fingerprint": "f", "shape": {"cpu_model": "test \"cpu\"", "cores": 8, "threads": 16,
            "arch": "x86_64", "virtualization": null},
            "cpu": {"max_prime": 60000, "threads": 16, "eps_single": 400.5, "eps_all": 6000.25},
            "ram": {"total_bytes": 68_000_000_000u64, "copy_gbs": 10.0, "triad_gbs": 11.5},
            "disk": {"dir": "/data", "fs_bytes": 900_000_000_000u64, "seq_write_mbs": 2000.0,
            "dd_mbs": 1500.0, "rand_read_iops": null, "rand_write_iops": null, "direct_error": null},
            "idle": {"load1": 0.1, "cpu_busy": 0.01, "waited_s": 0},
            "verdict": {"tier": tier, "lines": []},
        });
        let r: runtime::bench::report::Report = serde_json::from_value(json).unwrap();
        runtime::bench::report::sign(r, key)
            .to_file_text()
            .into_bytes()
    }

    #[test]
    fn a_report_signed_by_the_node_gives_its_tier_and_anything_else_is_refused() {
        let k = crate::tx::tests::key();
        let pk: PublicKey = k.public_key().as_ref().try_into().unwrap();
        assert_eq!(
            verify_report(&report(Some("stratus"), &k), &pk),
            Ok(Some(Tier::Stratus))
        );
        assert_eq!(verify_report(&report(None, &k), &pk), Ok(None));
        let other = crate::tx::tests::key();
        let e = verify_report(&report(Some("stratus"), &other), &pk).unwrap_err();
        assert!(e.contains("another key"), "{e}");
        let mut forged = String::from_utf8(report(Some("cumulus"), &k)).unwrap();
        forged = forged.replace("\"cumulus\"", "\"stratus\"");
        let e = verify_report(forged.as_bytes(), &pk).unwrap_err();
        assert!(e.contains("bad signature"), "{e}");
        assert!(verify_report(b"{}", &pk).is_err());
        assert!(verify_report(&[0xff], &pk).is_err());
    }

    #[test]
    fn minifying_keeps_strings_whole() {
        assert_eq!(
            minify("{ \"a b\" : [ 1, \"c\\\" d\" ] }"),
            "{\"a b\":[1,\"c\\\" d\"]}"
        );
    }
}
