//! A node key's consent to its registration: its signature over the owner's address, the
//! tier, the endpoint and the chain (genesis hash). A NodeStart carries it, so nobody
//! registers a key they do not hold; before, anyone could register anyone's node key, and
//! that node then confirmed for the stranger. The node makes it (`fluxnode chain consent`),
//! the owner's wallet puts it in the NodeStart. Its signed bytes begin with their own domain
//! tag, so a consent never passes for a header or a transaction the same key signs.

use ring::signature::{Ed25519KeyPair, UnparsedPublicKey, ED25519};

use crate::address::Address;
use crate::encode::Writer;
use crate::state::TxError;
use crate::tx::{Hash, PublicKey, Tier, Tx, TxBody};

/// What a consent's signed bytes begin with.
pub const DOMAIN: &[u8] = b"fluxnode node consent\0";

/// A node key's signature over a registration.
pub type Consent = [u8; 64];

/// The bytes a consent signs.
pub fn signing_bytes(chain: &Hash, owner: &Address, tier: Tier, endpoint: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.fixed(DOMAIN)
        .u8(1)
        .fixed(chain)
        .fixed(&owner.0)
        .u8(tier as u8)
        .str(endpoint);
    w.finish()
}

/// The consent of `node_key` to be registered by `owner` with this tier and endpoint on the
/// chain `chain`.
pub fn sign(
    node_key: &Ed25519KeyPair,
    chain: &Hash,
    owner: &Address,
    tier: Tier,
    endpoint: &str,
) -> Consent {
    let mut c = [0u8; 64];
    c.copy_from_slice(
        node_key
            .sign(&signing_bytes(chain, owner, tier, endpoint))
            .as_ref(),
    );
    c
}

/// Whether `consent` is `node_key`'s, for exactly this registration; the error says which
/// part is wrong as far as it can be known (a signature only says yes or no).
pub fn check(
    node_key: &PublicKey,
    chain: &Hash,
    owner: &Address,
    tier: Tier,
    endpoint: &str,
    consent: &Consent,
) -> Result<(), TxError> {
    let id = hex::encode(&node_key[..8]);
    if consent.iter().all(|b| *b == 0) {
        return Err(TxError::Node(
            id,
            "the node start carries no consent from the node key (make one on the node with \
             `fluxnode chain consent`)"
                .into(),
        ));
    }
    let ok = UnparsedPublicKey::new(&ED25519, node_key)
        .verify(&signing_bytes(chain, owner, tier, endpoint), consent)
        .is_ok();
    if ok {
        Ok(())
    } else {
        Err(TxError::Node(
            id,
            format!(
                "consent: the node key did not consent to owner {owner}, tier {tier:?}, \
                 endpoint {endpoint:?} on this chain"
            ),
        ))
    }
}

/// A NodeStart's consent, checked for its signer as the owner (other transactions pass).
/// Stateless, so the mempool refuses a bad one before any block is built.
pub fn check_tx(tx: &Tx, chain: &Hash) -> Result<(), TxError> {
    match &tx.body {
        TxBody::NodeStart {
            tier,
            node_key,
            endpoint,
            consent,
        } => check(node_key, chain, &tx.sender(), *tier, endpoint, consent),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::tests::key;
    use ring::signature::KeyPair;

    const CHAIN: Hash = [0xc1; 32];

    #[test]
    fn a_consent_holds_only_for_its_owner_tier_endpoint_and_chain() {
        let node = key();
        let pk: PublicKey = node.public_key().as_ref().try_into().unwrap();
        let owner = Address([1; 20]);
        let c = sign(&node, &CHAIN, &owner, Tier::Nimbus, "10.0.0.2:16125");
        check(&pk, &CHAIN, &owner, Tier::Nimbus, "10.0.0.2:16125", &c).unwrap();
        let wrong = [
            check(&pk, &[0xc2; 32], &owner, Tier::Nimbus, "10.0.0.2:16125", &c),
            check(
                &pk,
                &CHAIN,
                &Address([2; 20]),
                Tier::Nimbus,
                "10.0.0.2:16125",
                &c,
            ),
            check(&pk, &CHAIN, &owner, Tier::Stratus, "10.0.0.2:16125", &c),
            check(&pk, &CHAIN, &owner, Tier::Nimbus, "10.0.0.9:16125", &c),
        ];
        for e in wrong {
            let e = e.unwrap_err().to_string();
            assert!(e.contains("did not consent"), "{e}");
        }
        let other = key();
        let theirs = sign(&other, &CHAIN, &owner, Tier::Nimbus, "10.0.0.2:16125");
        assert!(check(&pk, &CHAIN, &owner, Tier::Nimbus, "10.0.0.2:16125", &theirs).is_err());
        let e = check(&pk, &CHAIN, &owner, Tier::Nimbus, "x", &[0; 64]).unwrap_err();
        assert!(e.to_string().contains("carries no consent"), "{e}");
    }

    #[test]
    fn a_transaction_signature_never_passes_for_a_consent() {
        let node = key();
        let pk: PublicKey = node.public_key().as_ref().try_into().unwrap();
        let owner = Address::from_public_key(&pk);
        let tx = Tx::signed(
            &node,
            &CHAIN,
            0,
            0,
            TxBody::NodeConfirm {
                bench_tier: None,
                bench_report: vec![],
                workload: vec![],
            },
        );
        assert!(check(&pk, &CHAIN, &owner, Tier::Cumulus, "", &tx.signature).is_err());
        assert!(signing_bytes(&CHAIN, &owner, Tier::Cumulus, "").starts_with(DOMAIN));
    }
}
