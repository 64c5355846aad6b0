//! JSON-RPC 2.0 methods with fluxd's names, as a dispatcher from a request body to a reply
//! (the HTTP transport calls it). Errors are JSON-RPC errors: -32700 parse error, -32600
//! invalid request, -32601 unknown method, -32602 bad params, -32603 internal, -32001 for a
//! method that changes something called without the API token, and fluxd's codes -5
//! (unknown address, key or object), -8 (bad parameter), -22 (undecodable transaction)
//! and -26 (transaction refused).

use serde_json::{json, Value};

use crate::address::Address;
use crate::block::Block;
use crate::ledger::Ledger;
use crate::mempool::Mempool;
use crate::state::{Node, NodeStatus};
use crate::store::Store;
use crate::tx::{Hash, PublicKey, Tier, Tx, COIN};

/// The methods, in the order `help` would list them.
pub const METHODS: [&str; 18] = [
    "getinfo",
    "getmempoolinfo",
    "getblockcount",
    "getbestblockhash",
    "getblockhash",
    "getblock",
    "getrawtransaction",
    "sendrawtransaction",
    "getbalance",
    "getfluxnodestatus",
    "listfluxnodes",
    "getfluxnodecount",
    "viewdeterministicfluxnodelist",
    "getbenchmarks",
    "getbenchstatus",
    "listapps",
    "getappspecs",
    "getapplocation",
];
/// Whether every call in a request body is one of the node lists, which a copy of the
/// ledger can answer without the lock (see `node::Shared::rpc`): any other method, such as
/// one that reads the mempool, or a body that does not parse, is answered the usual way.
pub fn only_node_lists(body: &[u8]) -> bool {
    let is_list = |r: &Value| {
        matches!(
            r.get("method").and_then(Value::as_str),
            Some("listfluxnodes" | "viewdeterministicfluxnodelist")
        )
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(batch)) => !batch.is_empty() && batch.iter().all(is_list),
        Ok(req @ Value::Object(_)) => is_list(&req),
        _ => false,
    }
}

/// Methods that change something: they need the API token.
pub const NEED_TOKEN: [&str; 1] = ["sendrawtransaction"];

/// What a call sees of the node.
pub struct Rpc<'a> {
    pub ledger: &'a Ledger,
    pub store: &'a Store,
    pub mempool: &'a mut Mempool,
    /// Whether the request carried the node's API token.
    pub authorized: bool,
    pub peers: usize,
    pub version: &'a str,
    /// What the calls admitted and made ready: the caller sends it to the peers.
    pub relay: Vec<Tx>,
}

struct Fail(i64, String);

fn fail(code: i64, msg: impl Into<String>) -> Fail {
    Fail(code, msg.into())
}

fn coins(units: u64) -> String {
    format!("{}.{:08}", units / COIN, units % COIN)
}

fn tier_name(t: Tier) -> &'static str {
    match t {
        Tier::Cumulus => "CUMULUS",
        Tier::Nimbus => "NIMBUS",
        Tier::Stratus => "STRATUS",
    }
}

fn hash_param(v: &Value, what: &str) -> Result<Hash, Fail> {
    let s = v
        .as_str()
        .ok_or_else(|| fail(-32602, format!("{what}: expected a hex string")))?;
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h)
        .map_err(|_| fail(-8, format!("{what}: expected 64 hex digits, got {s:?}")))?;
    Ok(h)
}

fn block_json(b: &Block) -> Value {
    let h = &b.header;
    json!({
        "hash": hex::encode(h.hash()), "height": h.height, "previousblockhash": hex::encode(h.prev),
        "slot": h.slot, "time": h.time, "producer": hex::encode(h.producer),
        "merkleroot": hex::encode(h.tx_root), "statedigest": hex::encode(h.state_digest),
        "tx": b.txs.iter().map(|t| hex::encode(t.id())).collect::<Vec<_>>(),
    })
}

impl Rpc<'_> {
    fn node_json(&self, key: &PublicKey, n: &Node) -> Value {
        let view = &self.ledger.view;
        let (status, last_confirm) = match n.status {
            NodeStatus::Started => ("STARTED", None),
            NodeStatus::Confirmed { last } => ("CONFIRMED", Some(last)),
            NodeStatus::Stopping { .. } => ("STOPPING", None),
        };
        json!({
            "key": hex::encode(key), "owner": n.owner.to_string(), "tier": tier_name(n.tier),
            "ip": n.endpoint, "status": status, "added_height": n.started_at,
            "confirmed_height": last_confirm, "last_paid_height": n.last_paid,
            "collateral": coins(n.collateral), "benchmark_tier": n.bench_tier.map(tier_name),
            "useful": view.useful().contains_key(key),
            "assigned": view.assigned(key).iter().map(|(a, i)| format!("{a}/{i}")).collect::<Vec<_>>(),
        })
    }

    fn node_param(&self, params: &Value) -> Result<(PublicKey, &Node), Fail> {
        let key = hash_param(&params[0], "node key")?;
        let n = self
            .ledger
            .state
            .nodes
            .get(&key)
            .ok_or_else(|| fail(-5, format!("no node {}", hex::encode(key))))?;
        Ok((key, n))
    }

    fn call(&mut self, method: &str, params: &Value) -> Result<Value, Fail> {
        if NEED_TOKEN.contains(&method) && !self.authorized {
            return Err(fail(-32001, format!("{method} needs the node's API token")));
        }
        let l = self.ledger;
        let store_err = |e: crate::store::StoreError| fail(-32603, e.to_string());
        Ok(match method {
            "getinfo" => json!({
                "version": self.version, "protocolversion": 1, "chain": l.genesis.chain_id,
                "genesis": hex::encode(l.genesis_hash), "blocks": l.height(),
                "bestblockhash": hex::encode(l.tip.hash()), "connections": self.peers,
                "target": format!("{:016x}", l.target), "mempool": self.mempool.len(),
            }),
            "getmempoolinfo" => {
                let m = &self.mempool;
                json!({"size": m.len(), "bytes": m.bytes(), "ready": m.ready(),
                       "maxtxs": m.limits().max_txs, "maxbytes": m.limits().max_bytes})
            }
            "getblockcount" => json!(l.height()),
            "getbestblockhash" => json!(hex::encode(l.tip.hash())),
            "getblockhash" => {
                let h = params[0]
                    .as_u64()
                    .ok_or_else(|| fail(-32602, "height: expected a number"))?;
                if h > l.height() {
                    return Err(fail(-8, format!("block height {h} out of range (tip {})", l.height())));
                }
                if h == 0 {
                    json!(hex::encode(l.root))
                } else {
                    let b = self.store.block_at(h).map_err(store_err)?.ok_or_else(|| fail(-5, format!("no block at {h}")))?;
                    json!(hex::encode(b.header.hash()))
                }
            }
            "getblock" => {
                let b = if let Some(h) = params[0].as_u64() {
                    self.store.block_at(h).map_err(store_err)?
                } else {
                    let hash = hash_param(&params[0], "block hash")?;
                    self.store.block(&hash).map_err(store_err)?
                };
                block_json(&b.ok_or_else(|| fail(-5, "block not found"))?)
            }
            "getrawtransaction" => {
                let id = hash_param(&params[0], "txid")?;
                let verbose = params[1].as_bool().unwrap_or(false) || params[1].as_u64() == Some(1);
                let (tx, height) = match self.store.transaction(&id).map_err(store_err)? {
                    Some((b, t)) => (t, Some(b.header.height)),
                    None => match self.mempool.get(&id) {
                        Some(t) => (t.clone(), None),
                        None => return Err(fail(-5, format!("no transaction {}", hex::encode(id)))),
                    },
                };
                let raw = hex::encode(tx.encode());
                if verbose {
                    json!({"txid": hex::encode(id), "hex": raw, "height": height,
                           "from": tx.sender().to_string(), "nonce": tx.nonce, "fee": tx.fee,
                           "type": format!("{:?}", tx.body).split([' ', '(', '{']).next().unwrap_or("")})
                } else {
                    json!(raw)
                }
            }
            "sendrawtransaction" => {
                let s = params[0]
                    .as_str()
                    .ok_or_else(|| fail(-32602, "expected the transaction as hex"))?;
                let bytes = hex::decode(s).map_err(|_| fail(-22, "TX decode failed: not hex"))?;
                let tx = Tx::decode(&bytes).map_err(|e| fail(-22, format!("TX decode failed: {e}")))?;
                let admitted = self
                    .mempool
                    .add(tx, l)
                    .map_err(|e| fail(-26, format!("transaction refused: {e}")))?;
                self.relay.extend(admitted.relay);
                json!(hex::encode(admitted.id))
            }
            "getbalance" => {
                let a: Address = params[0]
                    .as_str()
                    .ok_or_else(|| fail(-32602, "address: expected a string"))?
                    .parse()
                    .map_err(|e| fail(-5, format!("{e}")))?;
                let acc = l.state.account(&a);
                json!({"address": a.to_string(), "balance": acc.balance, "coins": coins(acc.balance), "nonce": acc.nonce})
            }
            "getfluxnodestatus" => {
                let key = hash_param(&params[0], "node key")?;
                if let Some(until) = l.state.dos.get(&key) {
                    return Ok(json!({"key": hex::encode(key), "status": "DOS", "dos_until_height": until}));
                }
                let (k, n) = self.node_param(params)?;
                self.node_json(&k, n)
            }
            "listfluxnodes" => Value::Array(l.state.nodes.iter().map(|(k, n)| self.node_json(k, n)).collect()),
            "getfluxnodecount" => {
                let count = |t: Tier| l.state.nodes.values().filter(|n| n.tier == t).count();
                json!({"total": l.state.nodes.len(), "cumulus": count(Tier::Cumulus), "nimbus": count(Tier::Nimbus),
                       "stratus": count(Tier::Stratus), "useful": l.useful().len()})
            }
            "viewdeterministicfluxnodelist" => {
                let mut list: Vec<(u64, PublicKey)> = l.state.nodes.iter().map(|(k, n)| (n.last_paid, *k)).collect();
                list.sort();
                Value::Array(list.iter().enumerate().map(|(rank, (_, k))| {
                    let mut j = self.node_json(k, &l.state.nodes[k]);
                    j["rank"] = json!(rank);
                    j
                }).collect())
            }
            "getbenchmarks" => {
                let (k, n) = self.node_param(params)?;
                json!({"key": hex::encode(k), "tier": n.bench_tier.map(tier_name)})
            }
            "getbenchstatus" => {
                let (_, n) = self.node_param(params)?;
                let ok = n.bench_tier.is_some_and(|b| b >= n.tier);
                json!({"status": if ok { "CONFIRMED" } else { "FAILED" }, "benchmarking": "toaster",
                       "tier": n.bench_tier.map(tier_name), "collateral_tier": tier_name(n.tier)})
            }
            "listapps" => Value::Array(l.state.apps.values().map(|a| json!({
                "name": a.spec.name, "owner": a.owner.to_string(), "instances": a.spec.instances,
                "expires_height": a.expires_at, "image": a.spec.image_ref,
            })).collect()),
            "getappspecs" => {
                let name = params[0].as_str().ok_or_else(|| fail(-32602, "app name: expected a string"))?;
                let a = l.state.apps.get(name).ok_or_else(|| fail(-5, format!("no app {name:?}")))?;
                let s = &a.spec;
                json!({"name": s.name, "owner": a.owner.to_string(), "image": s.image_ref, "digest": s.image_digest,
                       "command": s.command, "env": s.env, "ports": s.ports, "cpu_millis": s.cpu_millis,
                       "ram_bytes": s.ram_bytes, "disk_bytes": s.disk_bytes, "instances": s.instances,
                       "expires_height": a.expires_at})
            }
            "getapplocation" => {
                let name = params[0].as_str().ok_or_else(|| fail(-32602, "app name: expected a string"))?;
                if !l.state.apps.contains_key(name) {
                    return Err(fail(-5, format!("no app {name:?}")));
                }
                Value::Array(l.view.locations(name).into_iter().map(|(i, k)| {
                    let ip = l.state.nodes.get(&k).map(|n| n.endpoint.as_str()).unwrap_or("");
                    json!({"instance": i, "node": hex::encode(k), "ip": ip})
                }).collect())
            }
            other => return Err(fail(-32601, format!("method {other:?} not found"))),
        })
    }

    fn one(&mut self, req: &Value) -> Option<Value> {
        let id = req.get("id").cloned();
        let reply = |result: Result<Value, Fail>| match result {
            Ok(v) => {
                json!({"jsonrpc": "2.0", "result": v, "id": id.clone().unwrap_or(Value::Null)})
            }
            Err(Fail(code, message)) => {
                json!({"jsonrpc": "2.0", "error": {"code": code, "message": message}, "id": id.clone().unwrap_or(Value::Null)})
            }
        };
        let Some(method) = req.get("method").and_then(Value::as_str) else {
            return Some(reply(Err(fail(-32600, "invalid request: no method"))));
        };
        let params = req.get("params").cloned().unwrap_or(Value::Array(vec![]));
        if !(params.is_array() || params.is_object()) {
            return Some(reply(Err(fail(
                -32600,
                "invalid request: params must be an array",
            ))));
        }
        let out = reply(self.call(method, &params));
        // A notification (no id) gets no reply.
        id.map(|_| out)
    }

    /// The reply to one HTTP request body (a request or a batch); None for notifications only.
    pub fn handle(&mut self, body: &[u8]) -> Option<Value> {
        let parsed: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Some(
                    json!({"jsonrpc": "2.0", "error": {"code": -32700, "message": format!("parse error: {e}")}, "id": null}),
                )
            }
        };
        match parsed {
            Value::Array(batch) if batch.is_empty() => Some(
                json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "invalid request: empty batch"}, "id": null}),
            ),
            Value::Array(batch) => {
                let replies: Vec<Value> =
                    batch.iter().take(100).filter_map(|r| self.one(r)).collect();
                (!replies.is_empty()).then_some(Value::Array(replies))
            }
            req @ Value::Object(_) => self.one(&req),
            _ => Some(
                json!({"jsonrpc": "2.0", "error": {"code": -32600, "message": "invalid request"}, "id": null}),
            ),
        }
    }
}

#[cfg(test)]
mod tests;
