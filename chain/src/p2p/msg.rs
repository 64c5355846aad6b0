//! The messages of the p2p protocol and their canonical encoding: the protocol version byte,
//! a tag byte, then the fields in the chain's encoding. Blocks and transactions travel as
//! length-prefixed bytes in their own encodings. Decoding is strict: every length and count
//! is bounded, tags and versions must be known and trailing bytes are an error.

use crate::block::{Block, Header, MAX_BLOCK_BYTES};
use crate::encode::{DecodeError, Reader, Writer};
use crate::tx::{Hash, Tx, MAX_TX_BYTES};

pub const PROTOCOL_VERSION: u8 = 1;
pub const MAX_CHAIN_ID: usize = 64;
/// Headers asked for or sent in one message.
pub const MAX_HEADERS: usize = 2000;
/// Blocks asked for in one message.
pub const MAX_GET_BLOCKS: usize = 128;
pub const MAX_REASON: usize = 256;

/// The first message each side sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub chain_id: String,
    pub genesis: Hash,
    pub version: u32,
    pub best_height: u64,
    pub best_hash: Hash,
    /// Where the sender accepts connections (0: it does not).
    pub listen_port: u16,
}

/// Which blocks a `GetBlocks` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockIds {
    Heights(Vec<u64>),
    Hashes(Vec<Hash>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    Hello(Hello),
    /// Up to `max` headers from `from_height` on.
    GetHeaders {
        from_height: u64,
        max: u32,
    },
    Headers(Vec<Header>),
    GetBlocks(BlockIds),
    Block(Block),
    Tx(Tx),
    Ping(u64),
    Pong(u64),
    /// The sender is closing the connection.
    Bye {
        reason: String,
    },
}

const HELLO: u8 = 1;
const GET_HEADERS: u8 = 2;
const HEADERS: u8 = 3;
const GET_BLOCKS: u8 = 4;
const BLOCK: u8 = 5;
const TX: u8 = 6;
const PING: u8 = 7;
const PONG: u8 = 8;
const BYE: u8 = 9;

/// Reads a length-prefixed inner object, moving its decode error's offset into the message.
fn inner<T>(
    r: &mut Reader,
    max: usize,
    decode: impl FnOnce(&[u8]) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let at = r.err("").at + 4;
    decode(r.bytes(max)?).map_err(|e| DecodeError {
        what: "message",
        at: at + e.at,
        why: format!("{}: {}", e.what, e.why),
    })
}

/// Whether an encoded message is headers (only ever a reply: unasked, they are refused).
pub fn is_headers(body: &[u8]) -> bool {
    body.get(1) == Some(&HEADERS)
}

/// Whether an encoded message is a reply to a request (headers or a block): those may
/// arrive faster than the rate limit while we asked for them.
pub fn is_reply(body: &[u8]) -> bool {
    matches!(body.get(1), Some(&HEADERS) | Some(&BLOCK))
}

impl Msg {
    /// How many reply messages this request asks for (0 for anything but a request).
    pub fn solicits(&self) -> u32 {
        match self {
            Msg::GetHeaders { .. } => 1,
            Msg::GetBlocks(BlockIds::Heights(v)) => v.len() as u32,
            Msg::GetBlocks(BlockIds::Hashes(v)) => v.len() as u32,
            _ => 0,
        }
    }

    /// The message's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Hello(_) => "hello",
            Msg::GetHeaders { .. } => "get-headers",
            Msg::Headers(_) => "headers",
            Msg::GetBlocks(_) => "get-blocks",
            Msg::Block(_) => "block",
            Msg::Tx(_) => "tx",
            Msg::Ping(_) => "ping",
            Msg::Pong(_) => "pong",
            Msg::Bye { .. } => "bye",
        }
    }

    /// Whether the message is within the bounds a peer's decoder enforces (a message that
    /// is not would get its sender scored).
    pub fn check(&self) -> Result<(), String> {
        let over = |what: &str, n: usize, max: usize| {
            if n > max {
                Err(format!("{what} of {n} is over the limit of {max}"))
            } else {
                Ok(())
            }
        };
        match self {
            Msg::Hello(h) => over("a chain id", h.chain_id.len(), MAX_CHAIN_ID),
            Msg::GetHeaders { max, .. } => over("a header count", *max as usize, MAX_HEADERS),
            Msg::Headers(hs) => over("a header count", hs.len(), MAX_HEADERS),
            Msg::GetBlocks(BlockIds::Heights(v)) => over("a block count", v.len(), MAX_GET_BLOCKS),
            Msg::GetBlocks(BlockIds::Hashes(v)) => over("a block count", v.len(), MAX_GET_BLOCKS),
            Msg::Block(b) => over("a block size", b.encode().len(), MAX_BLOCK_BYTES),
            Msg::Tx(t) => over("a transaction size", t.encode().len(), MAX_TX_BYTES),
            Msg::Ping(_) | Msg::Pong(_) => Ok(()),
            Msg::Bye { reason } => over("a reason", reason.len(), MAX_REASON),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROTOCOL_VERSION);
        match self {
            Msg::Hello(h) => {
                w.u8(HELLO)
                    .str(&h.chain_id)
                    .fixed(&h.genesis)
                    .u32(h.version)
                    .u64(h.best_height)
                    .fixed(&h.best_hash)
                    .fixed(&h.listen_port.to_le_bytes());
            }
            Msg::GetHeaders { from_height, max } => {
                w.u8(GET_HEADERS).u64(*from_height).u32(*max);
            }
            Msg::Headers(hs) => {
                w.u8(HEADERS).list(hs, |w, h| {
                    w.fixed(&h.encode());
                });
            }
            Msg::GetBlocks(BlockIds::Heights(v)) => {
                w.u8(GET_BLOCKS).u8(1).list(v, |w, h| {
                    w.u64(*h);
                });
            }
            Msg::GetBlocks(BlockIds::Hashes(v)) => {
                w.u8(GET_BLOCKS).u8(2).list(v, |w, h| {
                    w.fixed(h);
                });
            }
            Msg::Block(b) => {
                w.u8(BLOCK).bytes(&b.encode());
            }
            Msg::Tx(t) => {
                w.u8(TX).bytes(&t.encode());
            }
            Msg::Ping(n) => {
                w.u8(PING).u64(*n);
            }
            Msg::Pong(n) => {
                w.u8(PONG).u64(*n);
            }
            Msg::Bye { reason } => {
                w.u8(BYE).str(reason);
            }
        }
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Msg, DecodeError> {
        let mut r = Reader::new(bytes, "message");
        r.version(PROTOCOL_VERSION)?;
        let msg = match r.u8()? {
            HELLO => Msg::Hello(Hello {
                chain_id: r.str(MAX_CHAIN_ID)?,
                genesis: r.fixed()?,
                version: r.u32()?,
                best_height: r.u64()?,
                best_hash: r.fixed()?,
                listen_port: u16::from_le_bytes(r.fixed()?),
            }),
            GET_HEADERS => {
                let from_height = r.u64()?;
                let max = r.u32()?;
                if max as usize > MAX_HEADERS {
                    return Err(r.err(format!(
                        "{max} headers asked for is over the limit of {MAX_HEADERS}"
                    )));
                }
                Msg::GetHeaders { from_height, max }
            }
            HEADERS => Msg::Headers(r.list(MAX_HEADERS, Header::read)?),
            GET_BLOCKS => Msg::GetBlocks(match r.u8()? {
                1 => BlockIds::Heights(r.list(MAX_GET_BLOCKS, |r| r.u64())?),
                2 => BlockIds::Hashes(r.list(MAX_GET_BLOCKS, |r| r.fixed())?),
                k => return Err(r.err(format!("block id kind {k} is unknown"))),
            }),
            BLOCK => Msg::Block(inner(&mut r, MAX_BLOCK_BYTES, Block::decode)?),
            TX => Msg::Tx(inner(&mut r, MAX_TX_BYTES, Tx::decode)?),
            PING => Msg::Ping(r.u64()?),
            PONG => Msg::Pong(r.u64()?),
            BYE => Msg::Bye {
                reason: r.str(MAX_REASON)?,
            },
            t => return Err(r.err(format!("message tag {t} is unknown"))),
        };
        r.end()?;
        Ok(msg)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::address::Address;
    use crate::tx::tests::key;
    use crate::tx::TxBody;

    pub fn hello() -> Hello {
        Hello {
            chain_id: "fluxnode-test".into(),
            genesis: [9; 32],
            version: PROTOCOL_VERSION.into(),
            best_height: 812,
            best_hash: [8; 32],
            listen_port: 16125,
        }
    }

    pub fn header(height: u64) -> Header {
        Header {
            height,
            prev: [1; 32],
            slot: height * 2,
            time: 1_800_000_000 + height,
            producer: [2; 32],
            tx_root: [3; 32],
            state_digest: [4; 32],
            signature: [5; 64],
        }
    }

    fn tx(nonce: u64) -> Tx {
        let body = TxBody::Transfer {
            to: Address([7; 20]),
            amount: 5,
        };
        Tx::signed(&key(), &[0xc1; 32], nonce, 10, body)
    }

    fn every_msg() -> Vec<Msg> {
        let mut blk = Block {
            header: header(3),
            txs: vec![tx(0), tx(1)],
        };
        blk.header.tx_root = Block::tx_root(&blk.txs);
        blk.header.sign(&key());
        vec![
            Msg::Hello(hello()),
            Msg::GetHeaders {
                from_height: 5,
                max: 2000,
            },
            Msg::Headers(vec![]),
            Msg::Headers((0..3).map(header).collect()),
            Msg::GetBlocks(BlockIds::Heights(vec![1, 2, u64::MAX])),
            Msg::GetBlocks(BlockIds::Hashes(vec![[1; 32], [2; 32]])),
            Msg::Block(blk),
            Msg::Tx(tx(4)),
            Msg::Ping(u64::MAX),
            Msg::Pong(0),
            Msg::Bye {
                reason: "shutting down".into(),
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in every_msg() {
            m.check().unwrap();
            let bytes = m.encode();
            assert_eq!(bytes[0], PROTOCOL_VERSION);
            assert_eq!(Msg::decode(&bytes).unwrap(), m, "{}", m.name());
        }
        let b = Msg::Hello(hello()).encode();
        assert_eq!(&b[b.len() - 2..], &16125u16.to_le_bytes());
    }

    #[test]
    fn unknown_versions_tags_and_trailing_bytes_are_refused_with_offsets() {
        let mut b = Msg::Ping(1).encode();
        b[0] = 2;
        let e = Msg::decode(&b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "message at byte 1: version 2 is unknown (expected 1)"
        );
        let e = Msg::decode(&[1, 42]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "message at byte 2: message tag 42 is unknown"
        );
        let mut b = Msg::Ping(1).encode();
        b.push(0);
        let e = Msg::decode(&b).unwrap_err();
        assert_eq!(e.to_string(), "message at byte 10: 1 trailing bytes");
        assert!(Msg::decode(&[]).is_err());
        let e = Msg::decode(&[1, GET_BLOCKS, 3, 0, 0, 0, 0]).unwrap_err();
        assert!(e.why.contains("kind 3 is unknown"), "{e}");
        // A bad transaction inside a message: its error's offset is within the message.
        let mut b = Msg::Tx(tx(1)).encode();
        b[6] = 9;
        let e = Msg::decode(&b).unwrap_err();
        assert_eq!(
            e.to_string(),
            "message at byte 7: transaction: version 9 is unknown (expected 2)"
        );
    }

    fn too_many(msg: Msg, limit: &str) {
        let e = msg.check().unwrap_err();
        assert!(e.contains("over the limit"), "{e}");
        let e = Msg::decode(&msg.encode()).unwrap_err();
        assert!(e.why.contains(limit), "{e}");
    }

    #[test]
    fn every_bound_is_enforced() {
        let mut h = hello();
        h.chain_id = "x".repeat(MAX_CHAIN_ID);
        assert!(Msg::decode(&Msg::Hello(h.clone()).encode()).is_ok());
        h.chain_id.push('x');
        too_many(Msg::Hello(h), "length 65 is over the limit of 64");
        too_many(
            Msg::GetHeaders {
                from_height: 0,
                max: 2001,
            },
            "2001 headers asked for is over the limit of 2000",
        );
        too_many(
            Msg::Headers(vec![header(1); MAX_HEADERS + 1]),
            "2001 items is over the limit of 2000",
        );
        too_many(
            Msg::GetBlocks(BlockIds::Heights(vec![1; MAX_GET_BLOCKS + 1])),
            "129 items is over the limit of 128",
        );
        too_many(
            Msg::GetBlocks(BlockIds::Hashes(vec![[0; 32]; MAX_GET_BLOCKS + 1])),
            "129 items is over the limit of 128",
        );
        too_many(
            Msg::Bye {
                reason: "x".repeat(MAX_REASON + 1),
            },
            "length 257 is over the limit of 256",
        );
        // Block and transaction bytes are bounded by their length prefix before decoding.
        let mut w = Writer::new();
        w.u8(1).u8(BLOCK).u32(MAX_BLOCK_BYTES as u32 + 1);
        let e = Msg::decode(&w.finish()).unwrap_err();
        assert!(e.why.contains("over the limit of 2097152"), "{e}");
        let mut w = Writer::new();
        w.u8(1).u8(TX).u32(MAX_TX_BYTES as u32 + 1);
        let e = Msg::decode(&w.finish()).unwrap_err();
        assert!(e.why.contains("over the limit of 65536"), "{e}");
        // A count that promises more than the bytes hold fails without allocating it.
        let mut w = Writer::new();
        w.u8(1).u8(HEADERS).u32(2000);
        assert!(Msg::decode(&w.finish()).unwrap_err().why.contains("needs"));
    }
}
