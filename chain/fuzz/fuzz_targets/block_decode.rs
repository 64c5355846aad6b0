//! `Block::decode` (and `Header::decode`) on any bytes: they never panic, and what they
//! accept is canonical (encoding it again gives the very same bytes).
#![no_main]

use chain::block::{Block, Header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::decode(data) {
        assert_eq!(h.encode(), data, "a decoded header encodes to other bytes");
        let _ = h.hash();
    }
    let Ok(block) = Block::decode(data) else {
        return;
    };
    let again = block.encode();
    assert_eq!(again, data, "a decoded block encodes to other bytes");
    assert_eq!(
        Header::decode(&block.header.encode()).as_ref(),
        Ok(&block.header)
    );
    assert_eq!(Block::decode(&again).as_ref(), Ok(&block));
    let _ = (block.header.hash(), Block::tx_root(&block.txs));
});
