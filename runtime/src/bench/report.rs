//! The benchmark report: a stable, versioned JSON schema (`fluxnode-bench/1`), signed with
//! Ed25519. The signature covers the compact JSON of `report`; the file is the pretty JSON
//! of the whole signed document, and `verify` accepts only that exact canonical form, so any
//! change to any byte of the file fails verification.
//!
//! Schema `fluxnode-bench/1`: `report` holds `schema`, `version`, `created_unix`, `quick`,
//! `fingerprint`, `shape` {cpu_model, cores, threads, arch, virtualization}, `cpu`
//! {max_prime, threads, eps_single, eps_all}, `ram` {total_bytes, copy_gbs, triad_gbs},
//! `disk` {dir, fs_bytes, seq_write_mbs, dd_mbs, rand_read_iops, rand_write_iops,
//! direct_error}, `idle` {load1, cpu_busy, waited_s}, `verdict` {tier, lines[]}; beside it
//! `public_key` and `signature` in hex.

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

use super::shape::Shape;
use super::tier::Verdict;

pub const SCHEMA: &str = "fluxnode-bench/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cpu {
    pub max_prime: u64,
    pub threads: usize,
    pub eps_single: f64,
    pub eps_all: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ram {
    pub total_bytes: u64,
    pub copy_gbs: f64,
    pub triad_gbs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub dir: String,
    pub fs_bytes: u64,
    pub seq_write_mbs: Option<f64>,
    pub dd_mbs: f64,
    pub rand_read_iops: Option<f64>,
    pub rand_write_iops: Option<f64>,
    pub direct_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Idle {
    pub load1: f64,
    pub cpu_busy: f64,
    pub waited_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema: String,
    pub version: String,
    pub created_unix: u64,
    pub quick: bool,
    pub fingerprint: String,
    pub shape: Shape,
    pub cpu: Cpu,
    pub ram: Ram,
    pub disk: Disk,
    pub idle: Idle,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signed {
    pub report: Report,
    pub public_key: String,
    pub signature: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("not a fluxnode bench report: {0}")]
    Parse(String),
    #[error("schema {0:?} is not {SCHEMA}")]
    Schema(String),
    #[error("the file is not in canonical form (it was edited after signing)")]
    NotCanonical,
    #[error("public key or signature is not hex")]
    Hex,
    #[error("signature does not match the report and public key")]
    BadSignature,
}

fn signed_bytes(report: &Report) -> Vec<u8> {
    serde_json::to_vec(report).expect("reports always serialize")
}

/// Signs a report; the result carries the public key.
pub fn sign(report: Report, key: &Ed25519KeyPair) -> Signed {
    let signature = key.sign(&signed_bytes(&report));
    Signed {
        public_key: hex::encode(key.public_key().as_ref()),
        signature: hex::encode(signature.as_ref()),
        report,
    }
}

impl Signed {
    /// The file form: pretty JSON and a newline.
    pub fn to_file_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("reports always serialize");
        text.push('\n');
        text
    }
}

/// Checks a report file's text: canonical form, schema, and signature.
pub fn verify(text: &str) -> Result<Signed, VerifyError> {
    let signed: Signed =
        serde_json::from_str(text).map_err(|e| VerifyError::Parse(e.to_string()))?;
    if signed.report.schema != SCHEMA {
        return Err(VerifyError::Schema(signed.report.schema));
    }
    if signed.to_file_text() != text {
        return Err(VerifyError::NotCanonical);
    }
    let key = hex::decode(&signed.public_key).map_err(|_| VerifyError::Hex)?;
    let sig = hex::decode(&signed.signature).map_err(|_| VerifyError::Hex)?;
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&signed_bytes(&signed.report), &sig)
        .map_err(|_| VerifyError::BadSignature)?;
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::super::tier::{verdict, Measured};
    use super::*;
    use ring::rand::SystemRandom;

    fn sample() -> Report {
        let measured = Measured {
            threads: 2,
            ram_bytes: 24 << 30,
            ssd_bytes: 250 << 30,
            eps_all: 868.25,
            dws_mbs: Some(2900.5),
        };
        Report {
            schema: SCHEMA.into(),
            version: "0.1.0".into(),
            created_unix: 1_764_000_000,
            quick: true,
            fingerprint: "0123456789abcdef".into(),
            shape: Shape {
                cpu_model: "AMD EPYC".into(),
                cores: 2,
                threads: 2,
                arch: "x86_64".into(),
                virtualization: Some("kvm".into()),
            },
            cpu: Cpu {
                max_prime: 60000,
                threads: 2,
                eps_single: 443.1,
                eps_all: 868.25,
            },
            ram: Ram {
                total_bytes: 24 << 30,
                copy_gbs: 10.5,
                triad_gbs: 11.25,
            },
            disk: Disk {
                dir: "/data".into(),
                fs_bytes: 250 << 30,
                seq_write_mbs: Some(2900.5),
                dd_mbs: 1200.0,
                rand_read_iops: Some(50000.0),
                rand_write_iops: None,
                direct_error: None,
            },
            idle: Idle {
                load1: 0.05,
                cpu_busy: 0.01,
                waited_s: 0,
            },
            verdict: verdict(&measured),
        }
    }

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    #[test]
    fn a_signed_report_verifies_and_round_trips() {
        let text = sign(sample(), &key()).to_file_text();
        let back = verify(&text).unwrap();
        assert_eq!(back.report, sample());
        let again: Signed = serde_json::from_str(&text).unwrap();
        assert_eq!(again.to_file_text(), text);
    }

    #[test]
    fn measured_floats_survive_the_file_exactly() {
        // Parsing must round-trip every f64 (serde_json's float_roundtrip), or a report
        // re-serializes differently and no longer verifies.
        let mut r = sample();
        for (i, x) in [
            0.1 + 0.2,
            1e-7,
            762.634_918_273_645_1,
            2.0f64.sqrt() * 1e3,
            5e-324,
        ]
        .into_iter()
        .enumerate()
        {
            r.cpu.eps_all = x;
            r.ram.copy_gbs = x * (i as f64 + 1.0);
            let text = sign(r.clone(), &key()).to_file_text();
            assert_eq!(verify(&text).map(|s| s.report.cpu.eps_all), Ok(x));
        }
    }

    #[test]
    fn changing_any_byte_fails_verification() {
        let text = sign(sample(), &key()).to_file_text();
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] ^= 0x01;
            if let Ok(s) = std::str::from_utf8(&changed) {
                assert!(
                    verify(s).is_err(),
                    "byte {i} ({:?}) changed and it still verified",
                    bytes[i] as char
                );
            }
        }
    }

    #[test]
    fn another_key_or_another_schema_is_refused() {
        let mut signed = sign(sample(), &key());
        signed.public_key = hex::encode(key().public_key().as_ref());
        assert_eq!(
            verify(&signed.to_file_text()),
            Err(VerifyError::BadSignature).map(|_: ()| unreachable!())
        );
        let mut other = sign(sample(), &key());
        other.report.schema = "fluxnode-bench/0".into();
        assert!(matches!(
            verify(&other.to_file_text()),
            Err(VerifyError::Schema(_))
        ));
    }
}
