//! `fluxnode chain consent`: the node key's consent to be registered by an owner, with a
//! tier and an endpoint, on the chain of a genesis. It runs where the node key is (on the
//! node) and prints the consent (hex) for the owner, whose wallet puts it in the node start
//! (`fluxnode tx node-start --consent`); stderr shows the whole command for the owner. Without
//! it the chain refuses the start, so nobody registers a node key they do not hold.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use chain::address::Address;
use chain::keys;
use clap::Args;

/// The longest endpoint a node start carries.
const MAX_ENDPOINT: usize = 1024;

#[derive(Args)]
pub struct ConsentArgs {
    /// The owner's address: the wallet that will send the node start (fx...).
    #[arg(long)]
    owner: String,
    /// cumulus, nimbus or stratus: the tier the owner registers.
    #[arg(long, default_value = "cumulus")]
    tier: String,
    /// This node's p2p endpoint as the owner registers it, e.g. 192.0.2.10:16125.
    #[arg(long)]
    endpoint: String,
    /// The node key.
    #[arg(long, default_value = "/data/keys/node.key")]
    key: PathBuf,
    /// The chain's genesis: its hash names the chain in the consent.
    #[arg(long, default_value = "/data/chain/genesis.json")]
    genesis: PathBuf,
}

pub fn run(a: ConsentArgs) -> Result<()> {
    let owner: Address = a.owner.parse().map_err(|e| anyhow!("--owner: {e}"))?;
    let tier = crate::wallet_cli::tier(&a.tier)?;
    if a.endpoint.is_empty() || a.endpoint.len() > MAX_ENDPOINT {
        bail!("--endpoint: expected the node's IP:port, at most {MAX_ENDPOINT} bytes");
    }
    let genesis = crate::chain_cli::read_genesis(&a.genesis)
        .map_err(|e| anyhow!("--genesis {}: {e}", a.genesis.display()))?;
    let key = keys::load(&a.key)?;
    let consent = chain::consent::sign(&key, &genesis.hash(), &owner, tier, &a.endpoint);
    let consent = hex::encode(consent);
    println!("{consent}");
    eprintln!(
        "the consent of node key {} to owner {owner}, tier {}, endpoint {} on chain {:?}; \
         the owner runs:\n  fluxnode tx node-start --tier {} --node-key {} --endpoint {} \
         --consent {consent} --wallet OWNER.key",
        hex::encode(keys::public(&key)),
        a.tier,
        a.endpoint,
        genesis.chain_id,
        a.tier,
        hex::encode(keys::public(&key)),
        a.endpoint,
    );
    Ok(())
}
