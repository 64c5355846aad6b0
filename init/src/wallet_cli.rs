//! `fluxnode wallet ...` and `fluxnode tx ...`: a key file, its address and balance, and
//! transactions signed here for the node's chain (its genesis hash, from `getinfo`, or
//! pinned with `--genesis`) and sent to its JSON-RPC (`sendrawtransaction`, which needs the
//! node's API token). A node start carries the node key's consent: made here from
//! `--node-key-file`, or on the node (`fluxnode chain consent`) and given as `--consent`.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use chain::address::Address;
use chain::consent::Consent;
use chain::keys;
use chain::tx::{AppSpec, Hash, Tier, Tx, TxBody, COIN};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

#[derive(Args)]
pub struct Conn {
    /// The wallet key file (Ed25519 PKCS#8).
    #[arg(long, default_value = "wallet.key")]
    wallet: PathBuf,
    /// The node's JSON-RPC address.
    #[arg(long, default_value = "127.0.0.1:16124")]
    rpc: String,
    /// The node's API token (needed to send), or --token-file.
    #[arg(long)]
    token: Option<String>,
    #[arg(long, default_value = "/data/chain/api.token")]
    token_file: PathBuf,
    /// Sign only for the chain of this genesis file (refused when the node runs another);
    /// without it, for the chain the node reports.
    #[arg(long)]
    genesis: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum WalletCommand {
    /// Make a new key file (never overwrites one) and print its address.
    New {
        #[arg(long, default_value = "wallet.key")]
        wallet: PathBuf,
    },
    /// Print the wallet's address.
    Address {
        #[arg(long, default_value = "wallet.key")]
        wallet: PathBuf,
    },
    /// Ask the node for the wallet's balance and nonce.
    Balance(Conn),
}

#[derive(Subcommand)]
pub enum TxCommand {
    /// Send coins.
    Transfer {
        to: String,
        /// Coins, e.g. 12.5.
        amount: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Lock a tier's collateral for a node key, with the node key's consent.
    NodeStart {
        #[arg(long, default_value = "cumulus")]
        tier: String,
        /// The node's key file (its /data/keys/node.key): it signs the consent here. Or
        /// --node-key HEX with --consent.
        #[arg(long)]
        node_key_file: Option<PathBuf>,
        #[arg(long)]
        node_key: Option<String>,
        /// The node's p2p endpoint, e.g. 192.0.2.10:16125.
        #[arg(long)]
        endpoint: String,
        /// The node key's consent (128 hex digits), printed on the node by `fluxnode chain
        /// consent --owner <this wallet's address> --tier T --endpoint E`.
        #[arg(long)]
        consent: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Stop a node; its collateral unlocks 100 blocks later.
    NodeStop {
        #[arg(long)]
        node_key_file: Option<PathBuf>,
        #[arg(long)]
        node_key: Option<String>,
        #[command(flatten)]
        conn: Conn,
    },
    /// Register an app (paid up front for its expiry).
    AppRegister {
        name: String,
        #[arg(long)]
        image_ref: String,
        #[arg(long)]
        digest: String,
        #[arg(long, default_value = "0.5")]
        cpu: String,
        #[arg(long, default_value = "256M")]
        ram: String,
        #[arg(long, default_value = "1G")]
        disk: String,
        #[arg(long, default_value_t = 1)]
        instances: u32,
        #[arg(long, default_value_t = 1000)]
        expiry: u64,
        #[arg(long = "port")]
        ports: Vec<u16>,
        #[arg(long = "env")]
        env: Vec<String>,
        #[command(flatten)]
        conn: Conn,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Cancel an app.
    AppCancel {
        name: String,
        #[command(flatten)]
        conn: Conn,
    },
}

const FEE: u64 = 10_000;

/// Units from a coin amount like `12.5` (at most 8 decimals).
pub fn parse_coins(s: &str) -> Result<u64> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 8 || whole.is_empty() && frac.is_empty() {
        bail!("amount {s:?}: expected coins with at most 8 decimals");
    }
    let w: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().with_context(|| format!("amount {s:?}"))?
    };
    let f: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<8}")
            .parse()
            .with_context(|| format!("amount {s:?}"))?
    };
    w.checked_mul(COIN)
        .and_then(|u| u.checked_add(f))
        .ok_or_else(|| anyhow!("amount {s:?} is too large"))
}

fn rpc(conn: &Conn, method: &str, params: Value, send: bool) -> Result<Value> {
    let token = match (&conn.token, send) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => Some(
            std::fs::read_to_string(&conn.token_file)
                .with_context(|| {
                    format!("API token {} (or give --token)", conn.token_file.display())
                })?
                .trim()
                .to_owned(),
        ),
        (None, false) => None,
    };
    let reply =
        chain::http::call(&conn.rpc, token.as_deref(), method, params).map_err(|e| anyhow!(e))?;
    if let Some(err) = reply.get("error") {
        bail!(
            "{method}: {} (code {})",
            err["message"].as_str().unwrap_or("?"),
            err["code"]
        );
    }
    Ok(reply["result"].clone())
}

fn node_key(file: &Option<PathBuf>, hex_key: &Option<String>) -> Result<[u8; 32]> {
    match (file, hex_key) {
        (Some(f), _) => Ok(keys::public(&keys::load(f)?)),
        (None, Some(h)) => {
            let mut k = [0u8; 32];
            hex::decode_to_slice(h, &mut k)
                .map_err(|_| anyhow!("--node-key: expected 64 hex digits"))?;
            Ok(k)
        }
        (None, None) => bail!("give --node-key-file FILE or --node-key HEX"),
    }
}

/// The chain the node runs (its genesis hash), which must be the `--genesis` file's when
/// one is given.
fn chain_of(conn: &Conn) -> Result<Hash> {
    let info = rpc(conn, "getinfo", json!([]), false)?;
    let mut theirs = [0u8; 32];
    hex::decode_to_slice(info["genesis"].as_str().unwrap_or_default(), &mut theirs)
        .map_err(|_| anyhow!("getinfo: no genesis hash in the reply"))?;
    let Some(file) = &conn.genesis else {
        return Ok(theirs);
    };
    let g = crate::chain_cli::read_genesis(file)
        .map_err(|e| anyhow!("--genesis {}: {e}", file.display()))?;
    if g.hash() != theirs {
        bail!(
            "--genesis {}: the node at {} runs chain {} (genesis {}), not {:?} (genesis {})",
            file.display(),
            conn.rpc,
            info["chain"],
            hex::encode(theirs),
            g.chain_id,
            hex::encode(g.hash())
        );
    }
    Ok(theirs)
}

fn send(conn: &Conn, body: TxBody) -> Result<()> {
    let chain = chain_of(conn)?;
    send_on(conn, &chain, body)
}

fn send_on(conn: &Conn, chain: &Hash, body: TxBody) -> Result<()> {
    let key = keys::load(&conn.wallet)?;
    let addr = keys::address(&key);
    let nonce = rpc(conn, "getbalance", json!([addr]), false)?["nonce"]
        .as_u64()
        .ok_or_else(|| anyhow!("getbalance: no nonce in the reply"))?;
    let tx = Tx::signed(&key, chain, nonce, FEE, body);
    let id = rpc(
        conn,
        "sendrawtransaction",
        json!([hex::encode(tx.encode())]),
        true,
    )?;
    println!("{}", id.as_str().unwrap_or_default());
    Ok(())
}

fn parse_consent(s: &str) -> Result<Consent> {
    let mut c = [0u8; 64];
    hex::decode_to_slice(s.trim(), &mut c).map_err(|_| {
        anyhow!("--consent: expected 128 hex digits (what `fluxnode chain consent` printed)")
    })?;
    Ok(c)
}

fn size(s: &str) -> Result<u64> {
    runtime::admission::parse_bytes(s)
        .ok_or_else(|| anyhow!("size {s:?}: expected e.g. 256M or 1G"))
}

pub fn wallet(cmd: WalletCommand) -> Result<()> {
    match cmd {
        WalletCommand::New { wallet } => {
            if wallet.exists() {
                bail!(
                    "{}: exists; a wallet is never overwritten",
                    wallet.display()
                );
            }
            let (k, _) = keys::load_or_create(&wallet)?;
            println!("{}", keys::address(&k));
        }
        WalletCommand::Address { wallet } => println!("{}", keys::address(&keys::load(&wallet)?)),
        WalletCommand::Balance(conn) => {
            let addr = keys::address(&keys::load(&conn.wallet)?);
            let r = rpc(&conn, "getbalance", json!([addr]), false)?;
            println!(
                "{} {} coins (nonce {})",
                addr,
                r["coins"].as_str().unwrap_or("?"),
                r["nonce"]
            );
        }
    }
    Ok(())
}

pub(crate) fn tier(s: &str) -> Result<Tier> {
    match s.to_ascii_lowercase().as_str() {
        "cumulus" => Ok(Tier::Cumulus),
        "nimbus" => Ok(Tier::Nimbus),
        "stratus" => Ok(Tier::Stratus),
        _ => bail!("--tier {s:?}: expected cumulus, nimbus or stratus"),
    }
}

pub fn tx(cmd: TxCommand) -> Result<()> {
    match cmd {
        TxCommand::Transfer { to, amount, conn } => {
            let to: Address = to.parse()?;
            send(
                &conn,
                TxBody::Transfer {
                    to,
                    amount: parse_coins(&amount)?,
                },
            )
        }
        TxCommand::NodeStart {
            tier: t,
            node_key_file,
            node_key: k,
            endpoint,
            consent,
            conn,
        } => {
            let chain = chain_of(&conn)?;
            let owner = Address::from_public_key(&keys::public(&keys::load(&conn.wallet)?));
            let tier = tier(&t)?;
            let (node_key, consent) = match (&node_key_file, consent) {
                (_, Some(c)) => (node_key(&node_key_file, &k)?, parse_consent(&c)?),
                (Some(f), None) => {
                    let pair = keys::load(f)?;
                    let c = chain::consent::sign(&pair, &chain, &owner, tier, &endpoint);
                    (keys::public(&pair), c)
                }
                (None, None) => bail!(
                    "--consent: the node key's consent is needed: on the node run `fluxnode \
                     chain consent --owner {owner} --tier {t} --endpoint {endpoint}` and give \
                     what it prints (or --node-key-file when this machine holds the node key)"
                ),
            };
            chain::consent::check(&node_key, &chain, &owner, tier, &endpoint, &consent).map_err(
                |e| {
                    anyhow!(
                        "--consent: {e}; make it again on the node for this wallet: `fluxnode \
                         chain consent --owner {owner} --tier {t} --endpoint {endpoint}`"
                    )
                },
            )?;
            let body = TxBody::NodeStart {
                tier,
                node_key,
                endpoint,
                consent,
            };
            send_on(&conn, &chain, body)
        }
        TxCommand::NodeStop {
            node_key_file,
            node_key: k,
            conn,
        } => send(
            &conn,
            TxBody::NodeStop {
                node_key: node_key(&node_key_file, &k)?,
            },
        ),
        TxCommand::AppRegister {
            name,
            image_ref,
            digest,
            cpu,
            ram,
            disk,
            instances,
            expiry,
            ports,
            env,
            conn,
            command,
        } => {
            let cpu_millis = runtime::admission::parse_cores(&cpu)
                .ok_or_else(|| anyhow!("--cpu {cpu:?}: expected cores like 0.5"))?;
            let spec = AppSpec {
                name,
                image_ref,
                image_digest: digest,
                command,
                env,
                ports,
                cpu_millis,
                ram_bytes: size(&ram)?,
                disk_bytes: size(&disk)?,
                instances,
                expiry_blocks: expiry,
            };
            send(&conn, TxBody::AppRegister(spec))
        }
        TxCommand::AppCancel { name, conn } => send(&conn, TxBody::AppCancel { name }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coin_amounts_parse_to_units() {
        assert_eq!(parse_coins("1").unwrap(), COIN);
        assert_eq!(parse_coins("12.5").unwrap(), 1_250_000_000);
        assert_eq!(parse_coins("0.00000001").unwrap(), 1);
        assert!(parse_coins("0.000000001").is_err());
        assert!(parse_coins("abc").is_err());
        assert!(parse_coins(".").is_err());
        assert!(parse_coins("999999999999").is_err());
    }
}
