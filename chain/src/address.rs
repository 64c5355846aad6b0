//! Account addresses: `fx` followed by the hex of the first 20 bytes of SHA-256(public key).

use std::fmt;
use std::str::FromStr;

use ring::digest::{digest, SHA256};

/// Length of an address body in bytes.
pub const ADDRESS_LEN: usize = 20;
const PREFIX: &str = "fx";

/// A 20-byte account address derived from an Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(pub [u8; ADDRESS_LEN]);

/// A string that is not a valid address, with the reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error("address {0:?}: must start with \"fx\"")]
    Prefix(String),
    #[error("address {0:?}: expected 40 hex digits after \"fx\"")]
    Body(String),
}

impl Address {
    /// The address of an Ed25519 public key (32 bytes).
    pub fn from_public_key(public_key: &[u8]) -> Self {
        let hash = digest(&SHA256, public_key);
        let mut body = [0u8; ADDRESS_LEN];
        body.copy_from_slice(&hash.as_ref()[..ADDRESS_LEN]);
        Address(body)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s
            .strip_prefix(PREFIX)
            .ok_or_else(|| AddressError::Prefix(s.to_owned()))?;
        let mut out = [0u8; ADDRESS_LEN];
        if body.len() != ADDRESS_LEN * 2 {
            return Err(AddressError::Body(s.to_owned()));
        }
        hex::decode_to_slice(body, &mut out).map_err(|_| AddressError::Body(s.to_owned()))?;
        Ok(Address(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_is_prefix_and_first_twenty_hash_bytes() {
        // SHA-256 of 32 zero bytes starts 66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925.
        let addr = Address::from_public_key(&[0u8; 32]);
        assert_eq!(
            addr.to_string(),
            "fx66687aadf862bd776c8fc18b8e9f8e2008971485"
        );
    }

    #[test]
    fn address_round_trips_through_text() {
        let addr = Address::from_public_key(b"some public key bytes, 32 long!!");
        assert_eq!(addr.to_string().parse::<Address>(), Ok(addr));
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        assert!(matches!(
            "zz00".parse::<Address>(),
            Err(AddressError::Prefix(_))
        ));
        assert!(matches!(
            "fx00".parse::<Address>(),
            Err(AddressError::Body(_))
        ));
        let not_hex = format!("fx{}", "g".repeat(40));
        assert!(matches!(
            not_hex.parse::<Address>(),
            Err(AddressError::Body(_))
        ));
    }
}
