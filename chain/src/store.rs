//! The chain's storage on sled: trees for blocks (by hash), the height index, the state
//! entries and the metadata (tip, digest, target, genesis hash). Each block is written in
//! one sled transaction across the trees and flushed before the node announces it, so a
//! node killed at any instant restarts on the state of a whole block. `reindex` rebuilds
//! the state by replaying the stored blocks from genesis. Only the store opens the database.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::block::{Block, Header};
use crate::encode::{Reader, Writer};
use crate::genesis::Genesis;
use crate::ledger::Ledger;
use crate::state::{Changes, State, StateKey};
use crate::tx::Hash;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("chain store {path}: {source}")]
    Sled { path: String, source: sled::Error },
    #[error("chain store {path}: {why}")]
    Corrupt { path: String, why: String },
    #[error("chain store {path}: made for genesis {stored}, not {given}")]
    OtherChain {
        path: String,
        stored: String,
        given: String,
    },
}

pub struct Store {
    path: String,
    db: sled::Db,
    blocks: sled::Tree,
    heights: sled::Tree,
    state: sled::Tree,
    meta: sled::Tree,
    /// Transaction id -> height of its block.
    txs: sled::Tree,
}

const META_GENESIS: &[u8] = b"genesis";
const META_TIP: &[u8] = b"tip";

fn meta_tip(l: &Ledger) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(1)
        .bytes(&l.tip.encode())
        .fixed(&l.digest)
        .u64(l.target)
        .list(&l.counts.iter().copied().collect::<Vec<_>>(), |w, c| {
            w.u32(*c);
        });
    w.finish()
}

impl Store {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.display().to_string();
        let sled_err = |source| StoreError::Sled {
            path: path.clone(),
            source,
        };
        let config = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::HighThroughput)
            // Every block is flushed by `write`; no background flusher thread.
            .flush_every_ms(None);
        // sled's own threads may hold the file lock for a moment after a store is dropped
        // (a restart in the same process): wait up to 2 s for it.
        let mut tries = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && tries < 100 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(sled_err(e)),
            }
        };
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        Ok(Store {
            blocks: tree("blocks")?,
            heights: tree("heights")?,
            state: tree("state")?,
            meta: tree("meta")?,
            txs: tree("txs")?,
            db,
            path,
        })
    }

    fn corrupt(&self, why: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            why: why.into(),
        }
    }

    fn sled(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    /// The ledger at the stored tip, or at genesis for an empty store (then written).
    pub fn load(&self, genesis: Genesis) -> Result<Ledger, StoreError> {
        let mut ledger = Ledger::new(genesis).map_err(|e| self.corrupt(e.to_string()))?;
        let given = hex::encode(ledger.genesis_hash);
        match self.meta.get(META_GENESIS).map_err(|e| self.sled(e))? {
            None => {
                let mut fresh = ledger
                    .genesis
                    .state()
                    .map_err(|e| self.corrupt(e.to_string()))?;
                let changes = fresh.take_changes();
                self.write(None, &changes, &ledger)?;
                return Ok(ledger);
            }
            Some(stored) if stored.as_ref() != ledger.genesis_hash => {
                return Err(StoreError::OtherChain {
                    path: self.path.clone(),
                    stored: hex::encode(stored),
                    given,
                })
            }
            Some(_) => {}
        }
        let tip = self
            .meta
            .get(META_TIP)
            .map_err(|e| self.sled(e))?
            .ok_or_else(|| self.corrupt("no tip recorded"))?;
        let mut r = Reader::new(&tip, "stored tip");
        let read = |r: &mut Reader| -> Result<_, crate::encode::DecodeError> {
            r.version(1)?;
            let header = Header::decode(r.bytes(1024)?)?;
            let digest: Hash = r.fixed()?;
            let target = r.u64()?;
            let counts = r.list(64, |r| r.u32())?;
            Ok((header, digest, target, counts))
        };
        let (header, digest, target, counts) =
            read(&mut r).map_err(|e| self.corrupt(e.to_string()))?;
        let mut state = State::default();
        for item in self.state.iter() {
            let (k, v) = item.map_err(|e| self.sled(e))?;
            let key = StateKey::decode(&k).map_err(|e| self.corrupt(e.to_string()))?;
            state
                .insert_entry(key, &v)
                .map_err(|e| self.corrupt(e.to_string()))?;
        }
        ledger.state = state;
        ledger.tip = header;
        ledger.digest = digest;
        ledger.target = target;
        ledger.counts = counts.into_iter().collect();
        Ok(ledger)
    }

    /// Writes a block (None for genesis), its state changes and the new tip in one
    /// transaction, then flushes.
    fn write(
        &self,
        block: Option<&Block>,
        changes: &Changes,
        l: &Ledger,
    ) -> Result<(), StoreError> {
        let block_bytes = block.map(|b| (b.header.hash(), b.header.height, b.encode()));
        let tx_ids: Vec<(Hash, u64)> = block
            .map(|b| b.txs.iter().map(|t| (t.id(), b.header.height)).collect())
            .unwrap_or_default();
        let tip = meta_tip(l);
        let result: Result<(), TransactionError<()>> = (
            &self.blocks,
            &self.heights,
            &self.state,
            &self.meta,
            &self.txs,
        )
            .transaction(|(blocks, heights, state, meta, txs)| {
                for (id, height) in &tx_ids {
                    txs.insert(&id[..], &height.to_be_bytes())?;
                }
                if let Some((hash, height, bytes)) = &block_bytes {
                    blocks.insert(&hash[..], bytes.as_slice())?;
                    heights.insert(&height.to_be_bytes(), &hash[..])?;
                }
                for (k, v) in changes {
                    match v {
                        Some(v) => state.insert(k.encode(), v.as_slice())?,
                        None => state.remove(k.encode())?,
                    };
                }
                meta.insert(META_GENESIS, &l.genesis_hash[..])?;
                meta.insert(META_TIP, tip.as_slice())?;
                Ok::<(), ConflictableTransactionError<()>>(())
            });
        result.map_err(|e| match e {
            TransactionError::Storage(s) => self.sled(s),
            TransactionError::Abort(()) => self.corrupt("transaction aborted"),
        })?;
        self.db.flush().map_err(|e| self.sled(e))?;
        Ok(())
    }

    /// Records a block the ledger has just applied, with its changes.
    pub fn commit(&self, block: &Block, changes: &Changes, l: &Ledger) -> Result<(), StoreError> {
        self.write(Some(block), changes, l)
    }

    pub fn block_at(&self, height: u64) -> Result<Option<Block>, StoreError> {
        let Some(hash) = self
            .heights
            .get(height.to_be_bytes())
            .map_err(|e| self.sled(e))?
        else {
            return Ok(None);
        };
        self.block(&hash)
    }

    /// The block holding transaction `id`, and the transaction.
    pub fn transaction(&self, id: &Hash) -> Result<Option<(Block, crate::tx::Tx)>, StoreError> {
        let Some(h) = self.txs.get(id).map_err(|e| self.sled(e))? else {
            return Ok(None);
        };
        let height = u64::from_be_bytes(
            h.as_ref()
                .try_into()
                .map_err(|_| self.corrupt("a transaction index entry is not 8 bytes"))?,
        );
        let Some(block) = self.block_at(height)? else {
            return Ok(None);
        };
        let tx = block.txs.iter().find(|t| &t.id() == id).cloned();
        Ok(tx.map(|t| (block, t)))
    }

    pub fn block(&self, hash: &[u8]) -> Result<Option<Block>, StoreError> {
        match self.blocks.get(hash).map_err(|e| self.sled(e))? {
            Some(b) => Block::decode(&b)
                .map(Some)
                .map_err(|e| self.corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    /// Rebuilds the state from the stored blocks: clears it, replays every block from
    /// height 1 through the ledger's rules and writes each again. Returns the ledger at the
    /// last block that replays.
    pub fn reindex(&self, genesis: Genesis) -> Result<Ledger, StoreError> {
        self.rewind(genesis, u64::MAX)
    }

    /// Rebuilds the state up to block `to` (for a reorganisation: the blocks above it leave
    /// the height index, and the winning branch is applied on top).
    pub fn rewind(&self, genesis: Genesis, to: u64) -> Result<Ledger, StoreError> {
        self.state.clear().map_err(|e| self.sled(e))?;
        self.meta.clear().map_err(|e| self.sled(e))?;
        if to != u64::MAX {
            let above: Vec<_> = self
                .heights
                .range((to + 1).to_be_bytes()..)
                .keys()
                .collect::<Result<_, _>>()
                .map_err(|e| self.sled(e))?;
            for k in above {
                self.heights.remove(k).map_err(|e| self.sled(e))?;
            }
        }
        let mut ledger = self.load(genesis)?;
        let mut height = 1;
        while height <= to {
            let Some(block) = self.block_at(height)? else {
                break;
            };
            let changes = ledger
                .apply(&block, u64::MAX)
                .map_err(|e| self.corrupt(format!("reindex: {e}")))?;
            self.commit(&block, &changes, &ledger)?;
            height += 1;
        }
        Ok(ledger)
    }
}

#[cfg(test)]
mod tests;
