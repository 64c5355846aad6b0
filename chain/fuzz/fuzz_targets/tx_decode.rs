//! `Tx::decode` on any bytes: it never panics, and what it accepts is canonical (encoding
//! the transaction again gives the very same bytes, and its signing bytes are those bytes
//! less the signature).
#![no_main]

use chain::tx::Tx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = Tx::decode(data) else {
        return;
    };
    let again = tx.encode();
    assert_eq!(again, data, "a decoded transaction encodes to other bytes");
    assert_eq!(tx.signing_bytes(), data[..data.len() - 64]);
    assert_eq!(Tx::decode(&again).as_ref(), Ok(&tx));
    let _ = (tx.id(), tx.sender());
});
