//! Transactions: transfer, node start/confirm/stop, app register/update/cancel. Each is
//! signed with Ed25519 by its signer over a domain tag, the chain (its genesis hash) and its
//! canonical encoding without the signature, so a transaction never replays on another
//! chain; the chain is not sent, each node supplies its own. The id is the SHA-256 of the
//! whole encoding. Decoding bounds every field.

use ring::digest::{digest, SHA256};
use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};

use crate::address::Address;
use crate::encode::{DecodeError, Reader, Writer};

/// 2: NodeStart carries the node key's consent, and signatures cover the chain.
pub const TX_VERSION: u8 = 2;
/// What a transaction's signed bytes begin with: never the start of a header's (a version
/// byte) nor of a node's consent (`consent::DOMAIN`), so one key's signatures of one kind
/// never pass for another.
const TX_DOMAIN: &[u8] = b"fluxnode tx\0";
/// 1 coin = 10^8 units.
pub const COIN: u64 = 100_000_000;
/// The longest encoded transaction a node accepts.
pub const MAX_TX_BYTES: usize = 64 * 1024;
const MAX_NAME: usize = 48;
pub(crate) const MAX_TEXT: usize = 1024;
const MAX_LIST: usize = 64;
const MAX_BENCH: usize = 16 * 1024;
const MAX_WORKLOAD: usize = 1024;

pub type Hash = [u8; 32];
pub type PublicKey = [u8; 32];

/// The node tiers, by collateral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Cumulus = 1,
    Nimbus = 2,
    Stratus = 3,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Cumulus, Tier::Nimbus, Tier::Stratus];

    fn from_u8(v: u8) -> Option<Tier> {
        Tier::ALL.into_iter().find(|t| *t as u8 == v)
    }
}

/// An app as the chain registers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub name: String,
    pub image_ref: String,
    /// The image's manifest digest, `sha256:<hex>`.
    pub image_digest: String,
    pub command: Vec<String>,
    pub env: Vec<String>,
    pub ports: Vec<u16>,
    pub cpu_millis: u64,
    pub ram_bytes: u64,
    pub disk_bytes: u64,
    pub instances: u32,
    /// How many blocks the registration lasts.
    pub expiry_blocks: u64,
}

/// One assigned instance as a node's workload report gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceUsage {
    pub app: String,
    pub instance: u32,
    pub running: bool,
    pub cpu_usage_usec: u64,
    pub memory_peak: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxBody {
    Transfer {
        to: Address,
        amount: u64,
    },
    /// Locks the tier's collateral from the signer's account for a node whose key signs
    /// its confirms. `consent` is the node key's signature over the signer's address, the
    /// tier, the endpoint and the chain (see `consent`): nobody registers a key they do not
    /// hold.
    NodeStart {
        tier: Tier,
        node_key: PublicKey,
        endpoint: String,
        consent: [u8; 64],
    },
    /// Signed by the node key: its benchmark (tier and signed report) and workload report.
    NodeConfirm {
        bench_tier: Option<Tier>,
        bench_report: Vec<u8>,
        workload: Vec<InstanceUsage>,
    },
    /// Signed by the owner; the collateral unlocks later.
    NodeStop {
        node_key: PublicKey,
    },
    AppRegister(AppSpec),
    AppUpdate(AppSpec),
    AppCancel {
        name: String,
    },
    /// Two different headers signed by one producer for one slot: the producer equivocated.
    /// Anyone may send it, free; it stops that node and puts its key on the DoS list.
    Evidence {
        a: Box<crate::block::Header>,
        b: Box<crate::block::Header>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tx {
    pub signer: PublicKey,
    pub nonce: u64,
    pub fee: u64,
    pub body: TxBody,
    pub signature: [u8; 64],
}

pub(crate) fn put_spec(w: &mut Writer, s: &AppSpec) {
    w.str(&s.name)
        .str(&s.image_ref)
        .str(&s.image_digest)
        .list(&s.command, |w, v| {
            w.str(v);
        })
        .list(&s.env, |w, v| {
            w.str(v);
        })
        .list(&s.ports, |w, p| {
            w.u32(*p as u32);
        })
        .u64(s.cpu_millis)
        .u64(s.ram_bytes)
        .u64(s.disk_bytes)
        .u32(s.instances)
        .u64(s.expiry_blocks);
}

pub(crate) fn get_spec(r: &mut Reader) -> Result<AppSpec, DecodeError> {
    Ok(AppSpec {
        name: r.str(MAX_NAME)?,
        image_ref: r.str(MAX_TEXT)?,
        image_digest: r.str(MAX_TEXT)?,
        command: r.list(MAX_LIST, |r| r.str(MAX_TEXT))?,
        env: r.list(MAX_LIST, |r| r.str(MAX_TEXT))?,
        ports: r.list(MAX_LIST, |r| {
            let p = r.u32()?;
            u16::try_from(p).map_err(|_| r.err(format!("port {p} is over 65535")))
        })?,
        cpu_millis: r.u64()?,
        ram_bytes: r.u64()?,
        disk_bytes: r.u64()?,
        instances: r.u32()?,
        expiry_blocks: r.u64()?,
    })
}

fn get_tier(r: &mut Reader) -> Result<Tier, DecodeError> {
    let v = r.u8()?;
    Tier::from_u8(v).ok_or_else(|| r.err(format!("tier {v} is unknown")))
}

impl TxBody {
    fn encode(&self, w: &mut Writer) {
        match self {
            TxBody::Transfer { to, amount } => {
                w.u8(1).fixed(&to.0).u64(*amount);
            }
            TxBody::NodeStart {
                tier,
                node_key,
                endpoint,
                consent,
            } => {
                w.u8(2)
                    .u8(*tier as u8)
                    .fixed(node_key)
                    .str(endpoint)
                    .fixed(consent);
            }
            TxBody::NodeConfirm {
                bench_tier,
                bench_report,
                workload,
            } => {
                w.u8(3)
                    .u8(bench_tier.map(|t| t as u8).unwrap_or(0))
                    .bytes(bench_report)
                    .list(workload, |w, u| {
                        w.str(&u.app)
                            .u32(u.instance)
                            .u8(u.running as u8)
                            .u64(u.cpu_usage_usec)
                            .u64(u.memory_peak);
                    });
            }
            TxBody::NodeStop { node_key } => {
                w.u8(4).fixed(node_key);
            }
            TxBody::AppRegister(s) => {
                w.u8(5);
                put_spec(w, s);
            }
            TxBody::AppUpdate(s) => {
                w.u8(6);
                put_spec(w, s);
            }
            TxBody::AppCancel { name } => {
                w.u8(7).str(name);
            }
            TxBody::Evidence { a, b } => {
                w.u8(8).bytes(&a.encode()).bytes(&b.encode());
            }
        }
    }

    fn decode(r: &mut Reader) -> Result<TxBody, DecodeError> {
        Ok(match r.u8()? {
            1 => TxBody::Transfer {
                to: Address(r.fixed()?),
                amount: r.u64()?,
            },
            2 => TxBody::NodeStart {
                tier: get_tier(r)?,
                node_key: r.fixed()?,
                endpoint: r.str(MAX_TEXT)?,
                consent: r.fixed()?,
            },
            3 => TxBody::NodeConfirm {
                bench_tier: match r.u8()? {
                    0 => None,
                    v => Some(
                        Tier::from_u8(v).ok_or_else(|| r.err(format!("tier {v} is unknown")))?,
                    ),
                },
                bench_report: r.bytes(MAX_BENCH)?.to_vec(),
                workload: r.list(MAX_WORKLOAD, |r| {
                    Ok(InstanceUsage {
                        app: r.str(MAX_NAME)?,
                        instance: r.u32()?,
                        running: match r.u8()? {
                            0 => false,
                            1 => true,
                            v => return Err(r.err(format!("running flag {v} is not 0 or 1"))),
                        },
                        cpu_usage_usec: r.u64()?,
                        memory_peak: r.u64()?,
                    })
                })?,
            },
            4 => TxBody::NodeStop {
                node_key: r.fixed()?,
            },
            5 => TxBody::AppRegister(get_spec(r)?),
            6 => TxBody::AppUpdate(get_spec(r)?),
            7 => TxBody::AppCancel {
                name: r.str(MAX_NAME)?,
            },
            8 => TxBody::Evidence {
                a: Box::new(crate::block::Header::decode(r.bytes(1024)?)?),
                b: Box::new(crate::block::Header::decode(r.bytes(1024)?)?),
            },
            t => return Err(r.err(format!("transaction type {t} is unknown"))),
        })
    }
}

impl TxBody {
    /// Whether it may pay no fee: a node's confirm (bounded by the registry) and evidence
    /// of an equivocation (valid once per offence).
    pub fn is_free(&self) -> bool {
        matches!(self, TxBody::NodeConfirm { .. } | TxBody::Evidence { .. })
    }
}

impl Tx {
    /// The encoding without the signature.
    fn unsigned_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(TX_VERSION)
            .fixed(&self.signer)
            .u64(self.nonce)
            .u64(self.fee);
        self.body.encode(&mut w);
        w.finish()
    }

    /// What the signature covers: the domain tag, the chain (its genesis hash) and the
    /// encoding without the signature.
    pub fn signing_bytes(&self, chain: &Hash) -> Vec<u8> {
        let mut b = Vec::with_capacity(TX_DOMAIN.len() + 32 + 128);
        b.extend_from_slice(TX_DOMAIN);
        b.extend_from_slice(chain);
        b.extend_from_slice(&self.unsigned_bytes());
        b
    }

    /// The wire encoding (the chain is not in it).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.unsigned_bytes();
        b.extend_from_slice(&self.signature);
        b
    }

    pub fn decode(bytes: &[u8]) -> Result<Tx, DecodeError> {
        let mut r = Reader::new(bytes, "transaction");
        if bytes.len() > MAX_TX_BYTES {
            return Err(r.err(format!(
                "{} bytes is over the limit of {MAX_TX_BYTES}",
                bytes.len()
            )));
        }
        r.version(TX_VERSION)?;
        let tx = Tx {
            signer: r.fixed()?,
            nonce: r.u64()?,
            fee: r.u64()?,
            body: TxBody::decode(&mut r)?,
            signature: r.fixed()?,
        };
        r.end()?;
        Ok(tx)
    }

    /// The transaction id: SHA-256 of its encoding.
    pub fn id(&self) -> Hash {
        digest(&SHA256, &self.encode())
            .as_ref()
            .try_into()
            .expect("32 bytes")
    }

    /// A transaction signed by `key` for the chain whose genesis hash is `chain`.
    pub fn signed(key: &Ed25519KeyPair, chain: &Hash, nonce: u64, fee: u64, body: TxBody) -> Tx {
        use ring::signature::KeyPair;
        let mut tx = Tx {
            signer: key.public_key().as_ref().try_into().expect("32 bytes"),
            nonce,
            fee,
            body,
            signature: [0; 64],
        };
        let sig = key.sign(&tx.signing_bytes(chain));
        tx.signature.copy_from_slice(sig.as_ref());
        tx
    }

    /// Whether the signature is the signer's over the transaction on the chain `chain`.
    pub fn verify(&self, chain: &Hash) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.signer)
            .verify(&self.signing_bytes(chain), &self.signature)
            .is_ok()
    }

    /// The signer's account address.
    pub fn sender(&self) -> Address {
        Address::from_public_key(&self.signer)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ring::rand::SystemRandom;

    pub fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    pub fn spec(name: &str) -> AppSpec {
        AppSpec {
            name: name.into(),
            image_ref: "local/busybox:1".into(),
            image_digest: format!("sha256:{}", "ab".repeat(32)),
            command: vec!["/bin/sh".into(), "-c".into(), "sleep 1000".into()],
            env: vec!["A=1".into()],
            ports: vec![8080],
            cpu_millis: 500,
            ram_bytes: 256 << 20,
            disk_bytes: 1 << 30,
            instances: 2,
            expiry_blocks: 1000,
        }
    }

    fn every_body() -> Vec<TxBody> {
        vec![
            TxBody::Transfer {
                to: Address([7; 20]),
                amount: 5 * COIN,
            },
            TxBody::NodeStart {
                tier: Tier::Nimbus,
                node_key: [3; 32],
                endpoint: "10.0.0.2:16125".into(),
                consent: [6; 64],
            },
            TxBody::NodeConfirm {
                bench_tier: Some(Tier::Cumulus),
                bench_report: b"{}".to_vec(),
                workload: vec![InstanceUsage {
                    app: "web".into(),
                    instance: 1,
                    running: true,
                    cpu_usage_usec: 9,
                    memory_peak: 10,
                }],
            },
            TxBody::NodeStop { node_key: [3; 32] },
            TxBody::AppRegister(spec("web")),
            TxBody::AppUpdate(spec("web")),
            TxBody::AppCancel { name: "web".into() },
        ]
    }

    pub const CHAIN: Hash = [0xc1; 32];

    #[test]
    fn every_transaction_round_trips_and_verifies() {
        let k = key();
        for body in every_body() {
            let tx = Tx::signed(&k, &CHAIN, 4, 1000, body);
            let bytes = tx.encode();
            let back = Tx::decode(&bytes).unwrap();
            assert_eq!(back, tx);
            assert!(back.verify(&CHAIN));
            assert_eq!(back.id(), tx.id());
        }
    }

    #[test]
    fn a_transaction_signed_for_one_chain_fails_on_another() {
        let k = key();
        let other: Hash = [0xc2; 32];
        for body in every_body() {
            let tx = Tx::signed(&k, &CHAIN, 0, 1_000, body);
            let replayed = Tx::decode(&tx.encode()).unwrap();
            assert!(replayed.verify(&CHAIN));
            assert!(!replayed.verify(&other), "{:?} replays", tx.body);
        }
        // The wire bytes do not carry the chain: the same bytes, two chains.
        let a = Tx::signed(&k, &CHAIN, 0, 1_000, every_body().remove(0));
        let b = Tx::signed(&k, &other, 0, 1_000, every_body().remove(0));
        assert_eq!(a.encode().len(), b.encode().len());
        assert_ne!(a.signature, b.signature);
    }

    #[test]
    fn any_changed_byte_breaks_the_signature_or_the_decode() {
        let k = key();
        let tx = Tx::signed(&k, &CHAIN, 1, 10, every_body().remove(0));
        let bytes = tx.encode();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            if let Ok(t) = Tx::decode(&b) {
                assert!(!t.verify(&CHAIN), "byte {i} flipped still verifies");
            }
        }
    }

    #[test]
    fn bad_encodings_are_named() {
        let k = key();
        let mut bytes = Tx::signed(&k, &CHAIN, 1, 10, every_body().remove(0)).encode();
        bytes.push(0);
        assert!(Tx::decode(&bytes).unwrap_err().why.contains("trailing"));
        let mut b = Tx::signed(&k, &CHAIN, 1, 10, every_body().remove(0)).encode();
        b[1 + 32 + 16] = 99;
        assert!(Tx::decode(&b)
            .unwrap_err()
            .why
            .contains("type 99 is unknown"));
        let e = Tx::decode(&vec![1; MAX_TX_BYTES + 1]).unwrap_err();
        assert!(e.why.contains("over the limit"), "{e}");
    }
}
