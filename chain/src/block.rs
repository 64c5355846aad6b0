//! Blocks: a header (height, previous hash, slot, time, producer key, transaction merkle
//! root, state digest) signed by its producer, and the transactions. The block hash is the
//! SHA-256 of the encoded header with its signature; decoding bounds the block's size and
//! transaction count.

use ring::digest::{digest, Context, SHA256};
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use crate::encode::{DecodeError, Reader, Writer};
use crate::tx::{Hash, PublicKey, Tx, MAX_TX_BYTES};

pub const BLOCK_VERSION: u8 = 1;
/// The largest encoded block (a p2p frame holds at most 4 MiB).
pub const MAX_BLOCK_BYTES: usize = 2 * 1024 * 1024;
pub const MAX_BLOCK_TXS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub height: u64,
    pub prev: Hash,
    pub slot: u64,
    /// Unix seconds.
    pub time: u64,
    pub producer: PublicKey,
    pub tx_root: Hash,
    pub state_digest: Hash,
    pub signature: [u8; 64],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<Tx>,
}

fn sha(parts: &[&[u8]]) -> Hash {
    let mut c = Context::new(&SHA256);
    for p in parts {
        c.update(p);
    }
    c.finish().as_ref().try_into().expect("32 bytes")
}

/// The merkle root of transaction ids: pairs hashed level by level, an odd last id paired
/// with itself; all zeros for no transactions.
pub fn merkle_root(ids: &[Hash]) -> Hash {
    if ids.is_empty() {
        return [0; 32];
    }
    let mut level = ids.to_vec();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| sha(&[&p[0], p.get(1).unwrap_or(&p[0])]))
            .collect();
    }
    level[0]
}

impl Header {
    /// What the producer signs. The chain is not written in it, and need not be: a header
    /// names its parent (`prev`), the parent of block 1 is the height-0 header whose own
    /// `prev` is the genesis hash, and a node takes a header only on a parent it holds. So a
    /// signed header is bound to one chain through its ancestry; on another chain it has no
    /// parent. (It starts with the version byte, never with a transaction's or a consent's
    /// domain tag, so the producer key's signatures of one kind never pass for another.)
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(BLOCK_VERSION)
            .u64(self.height)
            .fixed(&self.prev)
            .u64(self.slot)
            .u64(self.time)
            .fixed(&self.producer)
            .fixed(&self.tx_root)
            .fixed(&self.state_digest);
        w.finish()
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = self.signing_bytes();
        b.extend_from_slice(&self.signature);
        b
    }

    pub(crate) fn read(r: &mut Reader) -> Result<Header, DecodeError> {
        r.version(BLOCK_VERSION)?;
        Ok(Header {
            height: r.u64()?,
            prev: r.fixed()?,
            slot: r.u64()?,
            time: r.u64()?,
            producer: r.fixed()?,
            tx_root: r.fixed()?,
            state_digest: r.fixed()?,
            signature: r.fixed()?,
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
        let mut r = Reader::new(bytes, "header");
        let h = Self::read(&mut r)?;
        r.end()?;
        Ok(h)
    }

    pub fn hash(&self) -> Hash {
        digest(&SHA256, &self.encode())
            .as_ref()
            .try_into()
            .expect("32 bytes")
    }

    /// Signs the header as `key`, which becomes its producer.
    pub fn sign(&mut self, key: &Ed25519KeyPair) {
        self.producer = key.public_key().as_ref().try_into().expect("32 bytes");
        let sig = key.sign(&self.signing_bytes());
        self.signature.copy_from_slice(sig.as_ref());
    }

    pub fn verify(&self) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.producer)
            .verify(&self.signing_bytes(), &self.signature)
            .is_ok()
    }
}

impl Block {
    pub fn tx_root(txs: &[Tx]) -> Hash {
        merkle_root(&txs.iter().map(Tx::id).collect::<Vec<_>>())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.fixed(&self.header.encode()).list(&self.txs, |w, tx| {
            w.bytes(&tx.encode());
        });
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<Block, DecodeError> {
        let mut r = Reader::new(bytes, "block");
        if bytes.len() > MAX_BLOCK_BYTES {
            return Err(r.err(format!(
                "{} bytes is over the limit of {MAX_BLOCK_BYTES}",
                bytes.len()
            )));
        }
        let header = Header::read(&mut r)?;
        let txs = r.list(MAX_BLOCK_TXS, |r| {
            let b = r.bytes(MAX_TX_BYTES)?;
            Tx::decode(b)
        })?;
        r.end()?;
        Ok(Block { header, txs })
    }

    /// The header of an encoded block, without decoding its transactions.
    pub fn header_of(bytes: &[u8]) -> Result<Header, DecodeError> {
        Header::read(&mut Reader::new(bytes, "block"))
    }

    /// Whether the header is signed by its producer and commits to these transactions.
    pub fn verify(&self) -> bool {
        self.header.verify() && self.header.tx_root == Self::tx_root(&self.txs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::tx::tests::key;
    use crate::tx::TxBody;

    fn block(n_txs: u64) -> Block {
        let k = key();
        let txs: Vec<Tx> = (0..n_txs)
            .map(|i| {
                Tx::signed(
                    &k,
                    &[0xc1; 32],
                    i,
                    1_000,
                    TxBody::Transfer {
                        to: Address([1; 20]),
                        amount: i,
                    },
                )
            })
            .collect();
        let mut header = Header {
            height: 7,
            prev: [4; 32],
            slot: 99,
            time: 1_800_000_000,
            producer: [0; 32],
            tx_root: Block::tx_root(&txs),
            state_digest: [5; 32],
            signature: [0; 64],
        };
        header.sign(&key());
        Block { header, txs }
    }

    #[test]
    fn a_block_round_trips_and_verifies() {
        for n in [0, 1, 3] {
            let b = block(n);
            let back = Block::decode(&b.encode()).unwrap();
            assert_eq!(back, b);
            assert!(back.verify());
            assert_eq!(
                Header::decode(&b.header.encode()).unwrap().hash(),
                b.header.hash()
            );
        }
    }

    #[test]
    fn the_merkle_root_commits_to_every_transaction_and_its_order() {
        let a = [1u8; 32];
        let b = [2u8; 32];
        let c = [3u8; 32];
        assert_eq!(merkle_root(&[]), [0; 32]);
        assert_eq!(merkle_root(&[a]), a);
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
        assert_eq!(merkle_root(&[a, b, c]), merkle_root(&[a, b, c, c]));
        let mut blk = block(3);
        blk.txs.swap(0, 1);
        assert!(!blk.verify(), "reordered transactions break the root");
        let mut blk = block(2);
        blk.txs.pop();
        assert!(!blk.verify());
    }

    #[test]
    fn a_changed_header_fails_its_signature_and_bad_bytes_are_refused() {
        let mut b = block(1);
        b.header.height += 1;
        assert!(!b.verify());
        let mut bytes = block(1).encode();
        bytes.push(0);
        assert!(Block::decode(&bytes).unwrap_err().why.contains("trailing"));
        let e = Block::decode(&vec![0; MAX_BLOCK_BYTES + 1]).unwrap_err();
        assert!(e.why.contains("over the limit"));
    }
}
