//! The ledger's state and its rules: accounts with nonces, the node registry with its
//! lifecycle windows and DoS list, and the app registry. `apply` checks a transaction
//! completely before it changes anything, so a refused transaction leaves no trace;
//! `end_block` runs the per-block rules (unconfirmed nodes to the DoS list, expiry,
//! collateral unlocks, app expiry). Maps are ordered, so every walk is deterministic.

use std::collections::{BTreeMap, BTreeSet};

use crate::address::Address;
use crate::encode::Writer;
use crate::params::Params;
use crate::tx::{AppSpec, InstanceUsage, PublicKey, Tier, Tx, TxBody};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Account {
    pub balance: u64,
    pub nonce: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeStatus {
    Started,
    Confirmed { last: u64 },
    Stopping { unlock_at: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub owner: Address,
    pub tier: Tier,
    pub endpoint: String,
    pub started_at: u64,
    pub status: NodeStatus,
    pub collateral: u64,
    pub bench_tier: Option<Tier>,
    pub workload: Vec<InstanceUsage>,
    /// The height of its last reward (its start until it has one).
    pub last_paid: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub owner: Address,
    pub spec: AppSpec,
    pub expires_at: u64,
}

/// Why a transaction was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("bad signature")]
    Signature,
    #[error("account {account}: nonce {got}, expected {want}")]
    Nonce {
        account: Address,
        got: u64,
        want: u64,
    },
    #[error("fee {got} is under the minimum {min}")]
    Fee { got: u64, min: u64 },
    #[error("account {account}: balance {balance} is short of {need}")]
    Funds {
        account: Address,
        balance: u64,
        need: u64,
    },
    #[error("node {0}: {1}")]
    Node(String, String),
    #[error("app {0}: {1}")]
    App(String, String),
    #[error("{0} would overflow")]
    Overflow(String),
}

/// A block's changed entries in key order, each with its new encoding (None: removed).
pub type Changes = Vec<(StateKey, Option<Vec<u8>>)>;

/// One entry of the state, as the digest and storage name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum StateKey {
    Account(Address),
    Node(PublicKey),
    Dos(PublicKey),
    App(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub accounts: BTreeMap<Address, Account>,
    pub nodes: BTreeMap<PublicKey, Node>,
    /// Node keys barred from starting, until the height given.
    pub dos: BTreeMap<PublicKey, u64>,
    pub apps: BTreeMap<String, App>,
    /// The entries changed since `take_changes` last ran.
    pub touched: BTreeSet<StateKey>,
}

fn key_hex(k: &PublicKey) -> String {
    hex::encode(&k[..8])
}

impl State {
    pub fn account(&self, a: &Address) -> Account {
        self.accounts.get(a).copied().unwrap_or_default()
    }

    /// Every coin the state holds: the accounts' balances and the collateral locked in
    /// nodes (what a block may change only by what it mints, less what apps pay).
    pub fn supply(&self) -> u128 {
        let coins: u128 = self.accounts.values().map(|a| u128::from(a.balance)).sum();
        let locked: u128 = self.nodes.values().map(|n| u128::from(n.collateral)).sum();
        coins + locked
    }

    /// Adds `amount` to an account (rewards, refunds, transfers, genesis balances).
    pub fn credit(&mut self, a: Address, amount: u64) {
        self.touched.insert(StateKey::Account(a));
        let acc = self.accounts.entry(a).or_default();
        acc.balance = acc.balance.saturating_add(amount);
    }

    /// What `tx` costs its signer besides the fee, or why it is refused.
    fn check(&self, tx: &Tx, height: u64, p: &Params) -> Result<u64, TxError> {
        let sender = tx.sender();
        Ok(match &tx.body {
            TxBody::Transfer { amount, .. } => *amount,
            TxBody::NodeStart {
                tier,
                node_key,
                endpoint,
                consent,
            } => {
                crate::consent::check(node_key, &p.chain, &sender, *tier, endpoint, consent)?;
                if self.nodes.contains_key(node_key) {
                    return Err(TxError::Node(
                        key_hex(node_key),
                        "already registered".into(),
                    ));
                }
                if let Some(until) = self.dos.get(node_key) {
                    return Err(TxError::Node(
                        key_hex(node_key),
                        format!("on the DoS list until height {until}"),
                    ));
                }
                if self.nodes.len() as u64 >= p.max_nodes {
                    return Err(TxError::Node(
                        key_hex(node_key),
                        format!("the chain holds its most nodes, {}", p.max_nodes),
                    ));
                }
                p.collateral(*tier)
            }
            TxBody::NodeConfirm {
                bench_tier,
                workload,
                ..
            } => {
                let id = key_hex(&tx.signer);
                if workload.len() as u64 > p.max_apps_per_node {
                    return Err(TxError::Node(
                        id,
                        format!(
                            "its workload report lists {} instances, over the {} a node hosts",
                            workload.len(),
                            p.max_apps_per_node
                        ),
                    ));
                }
                let node = self
                    .nodes
                    .get(&tx.signer)
                    .ok_or_else(|| TxError::Node(id.clone(), "not registered".into()))?;
                match node.status {
                    NodeStatus::Started
                        if height > node.started_at.saturating_add(p.confirm_window) =>
                    {
                        return Err(TxError::Node(id, "its confirm window has closed".into()))
                    }
                    NodeStatus::Confirmed { last }
                        if height < last.saturating_add(p.reconfirm_min) =>
                    {
                        return Err(TxError::Node(
                            id,
                            format!(
                                "confirmed at {last}; next confirm from {}",
                                last.saturating_add(p.reconfirm_min)
                            ),
                        ))
                    }
                    NodeStatus::Stopping { .. } => {
                        return Err(TxError::Node(id, "is stopping".into()))
                    }
                    _ => {}
                }
                if p.enforce_bench {
                    let TxBody::NodeConfirm { bench_report, .. } = &tx.body else {
                        unreachable!("matched above")
                    };
                    let proven = crate::attest::verify_report(bench_report, &tx.signer)
                        .map_err(|e| TxError::Node(id.clone(), e))?;
                    if proven != *bench_tier {
                        return Err(TxError::Node(
                            id,
                            format!("claims tier {bench_tier:?}, its report says {proven:?}"),
                        ));
                    }
                    if proven.is_none_or(|b| b < node.tier) {
                        return Err(TxError::Node(
                            id,
                            format!("benchmark tier {proven:?} does not cover {:?}", node.tier),
                        ));
                    }
                }
                0
            }
            TxBody::NodeStop { node_key } => {
                let node = self
                    .nodes
                    .get(node_key)
                    .ok_or_else(|| TxError::Node(key_hex(node_key), "not registered".into()))?;
                if node.owner != sender {
                    return Err(TxError::Node(
                        key_hex(node_key),
                        format!("not owned by {sender}"),
                    ));
                }
                if matches!(node.status, NodeStatus::Stopping { .. }) {
                    return Err(TxError::Node(key_hex(node_key), "already stopping".into()));
                }
                if height.checked_add(p.unlock_after).is_none() {
                    return Err(TxError::Overflow(format!(
                        "the unlock height of {}",
                        key_hex(node_key)
                    )));
                }
                0
            }
            TxBody::AppRegister(spec) => {
                Self::check_spec(spec, p)?;
                Self::check_expiry(spec, height)?;
                if self.apps.contains_key(&spec.name) {
                    return Err(TxError::App(spec.name.clone(), "already registered".into()));
                }
                if self.apps.len() as u64 >= p.max_apps {
                    return Err(TxError::App(
                        spec.name.clone(),
                        format!("the chain holds its most apps, {}", p.max_apps),
                    ));
                }
                Self::price(spec, p)?
            }
            TxBody::AppUpdate(spec) => {
                Self::check_spec(spec, p)?;
                Self::check_expiry(spec, height)?;
                let app = self
                    .apps
                    .get(&spec.name)
                    .ok_or_else(|| TxError::App(spec.name.clone(), "not registered".into()))?;
                if app.owner != sender {
                    return Err(TxError::App(
                        spec.name.clone(),
                        format!("not owned by {sender}"),
                    ));
                }
                Self::price(spec, p)?
            }
            TxBody::AppCancel { name } => {
                let app = self
                    .apps
                    .get(name)
                    .ok_or_else(|| TxError::App(name.clone(), "not registered".into()))?;
                if app.owner != sender {
                    return Err(TxError::App(name.clone(), format!("not owned by {sender}")));
                }
                0
            }
            TxBody::Evidence { a, b } => {
                let id = key_hex(&a.producer);
                let bad = |why: &str| Err(TxError::Node(id.clone(), why.into()));
                if a.producer != b.producer || a.slot != b.slot || a.hash() == b.hash() {
                    return bad("the evidence is not two headers of one producer for one slot");
                }
                if !a.verify() || !b.verify() {
                    return bad("a header of the evidence is not signed by its producer");
                }
                if !self.nodes.contains_key(&a.producer) {
                    return bad("not registered");
                }
                if let Some(until) = self.dos.get(&a.producer) {
                    return bad(&format!("already on the DoS list until height {until}"));
                }
                0
            }
        })
    }

    fn check_spec(s: &AppSpec, p: &Params) -> Result<(), TxError> {
        let bad = |why: &str| Err(TxError::App(s.name.clone(), why.into()));
        let name_ok = !s.name.is_empty()
            && s.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !name_ok {
            return bad("name must be lowercase letters, digits or '-'");
        }
        if s.instances == 0 || s.expiry_blocks == 0 {
            return bad("instances and expiry must be at least 1");
        }
        if s.cpu_millis == 0 || s.ram_bytes == 0 {
            return bad("cpu and ram must be more than 0");
        }
        if u64::from(s.instances) > p.max_app_instances {
            return bad(&format!(
                "{} instances, over the most of {}",
                s.instances, p.max_app_instances
            ));
        }
        let (cpu, ram, disk) = crate::assign::tier_capacity(Tier::Stratus);
        if s.cpu_millis > cpu || s.ram_bytes > ram || s.disk_bytes > disk {
            return bad(&format!(
                "an instance needs more than the largest tier holds ({cpu} thousandths of a \
                 core, {ram} bytes of RAM, {disk} bytes of disk)"
            ));
        }
        Ok(())
    }

    fn check_expiry(s: &AppSpec, height: u64) -> Result<(), TxError> {
        match height.checked_add(s.expiry_blocks) {
            Some(_) => Ok(()),
            None => Err(TxError::App(
                s.name.clone(),
                "its expiry height overflows".into(),
            )),
        }
    }

    pub(crate) fn price(s: &AppSpec, p: &Params) -> Result<u64, TxError> {
        (s.instances as u64)
            .checked_mul(s.expiry_blocks)
            .and_then(|n| n.checked_mul(p.app_price))
            .ok_or_else(|| TxError::App(s.name.clone(), "price overflows".into()))
    }

    /// Checks and applies `tx` in block `height`; returns the fee for the producer. A
    /// refused transaction changes nothing.
    pub fn apply(&mut self, tx: &Tx, height: u64, p: &Params) -> Result<u64, TxError> {
        if !tx.verify(&p.chain) {
            return Err(TxError::Signature);
        }
        self.apply_verified(tx, height, p)
    }

    /// `apply` for a transaction whose signature is known to verify: a block's are checked
    /// on every core before they are applied in order, and the mempool re-runs its pending
    /// transactions at every tip without checking their signatures again.
    pub fn apply_verified(&mut self, tx: &Tx, height: u64, p: &Params) -> Result<u64, TxError> {
        let sender = tx.sender();
        let acc = self.account(&sender);
        if tx.nonce != acc.nonce {
            return Err(TxError::Nonce {
                account: sender,
                got: tx.nonce,
                want: acc.nonce,
            });
        }
        let free = tx.body.is_free();
        if !free && tx.fee < p.min_fee {
            return Err(TxError::Fee {
                got: tx.fee,
                min: p.min_fee,
            });
        }
        let cost = self.check(tx, height, p)?;
        let need = cost.checked_add(tx.fee).ok_or(TxError::Funds {
            account: sender,
            balance: acc.balance,
            need: u64::MAX,
        })?;
        if acc.balance < need {
            return Err(TxError::Funds {
                account: sender,
                balance: acc.balance,
                need,
            });
        }
        let nonce = acc
            .nonce
            .checked_add(1)
            .ok_or_else(|| TxError::Overflow(format!("account {sender}: the nonce")))?;
        if let TxBody::Transfer { to, amount } = &tx.body {
            let before = if *to == sender {
                acc.balance - need
            } else {
                self.account(to).balance
            };
            if before.checked_add(*amount).is_none() {
                return Err(TxError::Overflow(format!("account {to}: the balance")));
            }
        }
        self.touched.insert(StateKey::Account(sender));
        let a = self.accounts.entry(sender).or_default();
        a.balance -= need;
        a.nonce = nonce;
        match &tx.body {
            TxBody::Transfer { .. } | TxBody::NodeStop { .. } | TxBody::NodeConfirm { .. } => {}
            TxBody::NodeStart { node_key, .. } => {
                self.touched.insert(StateKey::Node(*node_key));
            }
            TxBody::AppRegister(s) | TxBody::AppUpdate(s) => {
                self.touched.insert(StateKey::App(s.name.clone()));
            }
            TxBody::AppCancel { name } => {
                self.touched.insert(StateKey::App(name.clone()));
            }
            TxBody::Evidence { a, .. } => {
                self.touched.insert(StateKey::Node(a.producer));
                self.touched.insert(StateKey::Dos(a.producer));
            }
        }
        match &tx.body {
            TxBody::Transfer { to, amount } => self.credit(*to, *amount),
            TxBody::NodeStart {
                tier,
                node_key,
                endpoint,
                ..
            } => {
                self.nodes.insert(
                    *node_key,
                    Node {
                        owner: sender,
                        tier: *tier,
                        endpoint: endpoint.clone(),
                        started_at: height,
                        status: NodeStatus::Started,
                        collateral: cost,
                        bench_tier: None,
                        workload: Vec::new(),
                        last_paid: height,
                    },
                );
            }
            TxBody::NodeConfirm {
                bench_tier,
                workload,
                ..
            } => {
                self.touched.insert(StateKey::Node(tx.signer));
                let node = self.nodes.get_mut(&tx.signer).expect("checked");
                node.status = NodeStatus::Confirmed { last: height };
                node.bench_tier = *bench_tier;
                node.workload = workload.clone();
            }
            TxBody::NodeStop { node_key } => {
                self.touched.insert(StateKey::Node(*node_key));
                let node = self.nodes.get_mut(node_key).expect("checked");
                node.status = NodeStatus::Stopping {
                    unlock_at: height.saturating_add(p.unlock_after), // checked above
                };
            }
            TxBody::AppRegister(spec) | TxBody::AppUpdate(spec) => {
                self.apps.insert(
                    spec.name.clone(),
                    App {
                        owner: sender,
                        spec: spec.clone(),
                        expires_at: height.saturating_add(spec.expiry_blocks), // checked above
                    },
                );
            }
            TxBody::AppCancel { name } => {
                self.apps.remove(name);
            }
            TxBody::Evidence { a, .. } => {
                // The equivocator stops (its collateral unlocks as after a stop) and may
                // not start again while on the DoS list.
                if let Some(node) = self.nodes.get_mut(&a.producer) {
                    if !matches!(node.status, NodeStatus::Stopping { .. }) {
                        node.status = NodeStatus::Stopping {
                            unlock_at: height.saturating_add(p.unlock_after),
                        };
                    }
                }
                self.dos
                    .insert(a.producer, height.saturating_add(p.dos_blocks));
            }
        }
        Ok(tx.fee)
    }

    /// A state holding only the entries `txs` read or write: their senders' accounts and
    /// recipients, and the nodes, DoS entries and apps they name. `apply` on it decides as on
    /// the whole state, for these transactions, at a fraction of a copy's cost (the mempool
    /// checks a sender's pending transactions on one). Keep it in step with `check`.
    pub fn view<'a>(&self, txs: impl IntoIterator<Item = &'a Tx>) -> State {
        let mut v = State::default();
        let account = |v: &mut State, a: Address| {
            if let Some(acc) = self.accounts.get(&a) {
                v.accounts.insert(a, *acc);
            }
        };
        for tx in txs {
            account(&mut v, tx.sender());
            let node = match &tx.body {
                TxBody::Transfer { to, .. } => {
                    account(&mut v, *to);
                    None
                }
                TxBody::NodeStart { node_key, .. } => {
                    if let Some(until) = self.dos.get(node_key) {
                        v.dos.insert(*node_key, *until);
                    }
                    Some(node_key)
                }
                TxBody::NodeConfirm { .. } => Some(&tx.signer),
                TxBody::Evidence { a, .. } => {
                    if let Some(until) = self.dos.get(&a.producer) {
                        v.dos.insert(a.producer, *until);
                    }
                    Some(&a.producer)
                }
                TxBody::NodeStop { node_key } => Some(node_key),
                TxBody::AppRegister(AppSpec { name, .. })
                | TxBody::AppUpdate(AppSpec { name, .. })
                | TxBody::AppCancel { name } => {
                    if let Some(app) = self.apps.get(name) {
                        v.apps.insert(name.clone(), app.clone());
                    }
                    None
                }
            };
            if let Some(n) = node.and_then(|k| self.nodes.get(k).map(|n| (*k, n))) {
                v.nodes.insert(n.0, n.1.clone());
            }
        }
        v
    }

    /// The rules that run at the end of block `height`.
    pub fn end_block(&mut self, height: u64, p: &Params) {
        let touched = &mut self.touched;
        self.dos.retain(|key, until| {
            let keep = *until > height;
            if !keep {
                touched.insert(StateKey::Dos(*key));
            }
            keep
        });
        let mut refunds = Vec::new();
        let mut dos = Vec::new();
        self.nodes.retain(|key, n| {
            let gone = match n.status {
                NodeStatus::Started if height > n.started_at.saturating_add(p.confirm_window) => {
                    dos.push(*key);
                    true
                }
                NodeStatus::Confirmed { last } => height > last.saturating_add(p.expire_after),
                NodeStatus::Stopping { unlock_at } => height >= unlock_at,
                _ => false,
            };
            if gone {
                refunds.push((n.owner, n.collateral));
                touched.insert(StateKey::Node(*key));
            }
            !gone
        });
        self.apps.retain(|name, a| {
            let keep = a.expires_at > height;
            if !keep {
                touched.insert(StateKey::App(name.clone()));
            }
            keep
        });
        for key in dos {
            self.touched.insert(StateKey::Dos(key));
            self.dos.insert(key, height.saturating_add(p.dos_blocks));
        }
        for (owner, amount) in refunds {
            self.credit(owner, amount);
        }
    }

    /// The canonical encoding of an entry's current value; None when it is absent.
    pub fn entry_bytes(&self, key: &StateKey) -> Option<Vec<u8>> {
        let mut w = Writer::new();
        match key {
            StateKey::Account(a) => {
                let acc = self.accounts.get(a)?;
                w.u64(acc.balance).u64(acc.nonce);
            }
            StateKey::Node(k) => {
                let n = self.nodes.get(k)?;
                let (status, at) = match n.status {
                    NodeStatus::Started => (1, n.started_at),
                    NodeStatus::Confirmed { last } => (2, last),
                    NodeStatus::Stopping { unlock_at } => (3, unlock_at),
                };
                w.fixed(&n.owner.0)
                    .u8(n.tier as u8)
                    .str(&n.endpoint)
                    .u64(n.started_at)
                    .u8(status)
                    .u64(at)
                    .u64(n.collateral)
                    .u8(n.bench_tier.map(|t| t as u8).unwrap_or(0))
                    .list(&n.workload, |w, u| {
                        w.str(&u.app)
                            .u32(u.instance)
                            .u8(u.running as u8)
                            .u64(u.cpu_usage_usec)
                            .u64(u.memory_peak);
                    })
                    .u64(n.last_paid);
            }
            StateKey::Dos(k) => {
                w.u64(*self.dos.get(k)?);
            }
            StateKey::App(name) => {
                let a = self.apps.get(name)?;
                w.fixed(&a.owner.0).u64(a.expires_at);
                crate::tx::put_spec(&mut w, &a.spec);
            }
        }
        Some(w.finish())
    }

    /// The changed entries since the last call, in key order, each with its new encoding
    /// (None: removed); the touched set starts over.
    pub fn take_changes(&mut self) -> Changes {
        let keys = std::mem::take(&mut self.touched);
        keys.into_iter()
            .map(|k| {
                let v = self.entry_bytes(&k);
                (k, v)
            })
            .collect()
    }

    /// Marks a node's reward.
    pub fn paid(&mut self, key: &PublicKey, height: u64) {
        if let Some(n) = self.nodes.get_mut(key) {
            n.last_paid = height;
            self.touched.insert(StateKey::Node(*key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::tests::{key, spec};
    use crate::tx::COIN;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn pk(k: &Ed25519KeyPair) -> PublicKey {
        k.public_key().as_ref().try_into().unwrap()
    }

    fn params() -> Params {
        Params {
            enforce_bench: false,
            chain: [0xc1; 32],
            ..Params::default()
        }
    }

    struct World {
        s: State,
        p: Params,
        owner: Ed25519KeyPair,
        node: Ed25519KeyPair,
    }

    impl World {
        fn new() -> Self {
            let owner = key();
            let mut s = State::default();
            s.credit(Address::from_public_key(&pk(&owner)), 2_000 * COIN);
            World {
                s,
                p: params(),
                owner,
                node: key(),
            }
        }

        fn send(&mut self, k_is_node: bool, body: TxBody, h: u64) -> Result<u64, TxError> {
            let k = if k_is_node { &self.node } else { &self.owner };
            let nonce = self.s.account(&Address::from_public_key(&pk(k))).nonce;
            let fee = if k_is_node { 0 } else { 1_000 };
            let tx = Tx::signed(k, &self.p.chain, nonce, fee, body);
            self.s.apply(&tx, h, &self.p)
        }

        fn owner_address(&self) -> Address {
            Address::from_public_key(&pk(&self.owner))
        }

        /// A NodeStart of the node by the owner, with the node's consent.
        fn start_body(&self, tier: Tier, endpoint: &str) -> TxBody {
            let consent = crate::consent::sign(
                &self.node,
                &self.p.chain,
                &self.owner_address(),
                tier,
                endpoint,
            );
            TxBody::NodeStart {
                tier,
                node_key: pk(&self.node),
                endpoint: endpoint.into(),
                consent,
            }
        }

        fn start(&mut self, h: u64) -> Result<u64, TxError> {
            let body = self.start_body(Tier::Cumulus, "127.0.0.1:16125");
            self.send(false, body, h)
        }

        fn confirm(&mut self, h: u64) -> Result<u64, TxError> {
            let body = TxBody::NodeConfirm {
                bench_tier: Some(Tier::Cumulus),
                bench_report: vec![],
                workload: vec![],
            };
            self.send(true, body, h)
        }

        fn owner_balance(&self) -> u64 {
            self.s
                .account(&Address::from_public_key(&pk(&self.owner)))
                .balance
        }

        fn run_blocks(&mut self, from: u64, to: u64) {
            for h in from..=to {
                self.s.end_block(h, &self.p);
            }
        }
    }

    #[test]
    fn a_transfer_moves_coins_and_the_fee_and_bumps_the_nonce() {
        let mut w = World::new();
        let to = Address([9; 20]);
        let fee = w
            .send(
                false,
                TxBody::Transfer {
                    to,
                    amount: 5 * COIN,
                },
                1,
            )
            .unwrap();
        assert_eq!(fee, 1_000);
        assert_eq!(w.s.account(&to).balance, 5 * COIN);
        assert_eq!(w.owner_balance(), 1_995 * COIN - 1_000);
        let sender = Address::from_public_key(&pk(&w.owner));
        assert_eq!(w.s.account(&sender).nonce, 1);
    }

    #[test]
    fn refused_transactions_change_nothing() {
        let mut w = World::new();
        let before = w.s.clone();
        let to = Address([9; 20]);
        let tx = Tx::signed(
            &w.owner,
            &w.p.chain,
            5,
            1_000,
            TxBody::Transfer { to, amount: 1 },
        );
        assert!(matches!(
            w.s.apply(&tx, 1, &w.p),
            Err(TxError::Nonce {
                got: 5,
                want: 0,
                ..
            })
        ));
        let tx = Tx::signed(
            &w.owner,
            &w.p.chain,
            0,
            999,
            TxBody::Transfer { to, amount: 1 },
        );
        assert_eq!(
            w.s.apply(&tx, 1, &w.p),
            Err(TxError::Fee {
                got: 999,
                min: 1_000
            })
        );
        let tx = Tx::signed(
            &w.owner,
            &w.p.chain,
            0,
            1_000,
            TxBody::Transfer {
                to,
                amount: 2_000 * COIN,
            },
        );
        assert!(matches!(
            w.s.apply(&tx, 1, &w.p),
            Err(TxError::Funds { .. })
        ));
        let mut tx = Tx::signed(
            &w.owner,
            &w.p.chain,
            0,
            1_000,
            TxBody::Transfer { to, amount: 1 },
        );
        tx.fee += 1;
        assert_eq!(w.s.apply(&tx, 1, &w.p), Err(TxError::Signature));
        let stranger = key();
        let tx = Tx::signed(
            &stranger,
            &w.p.chain,
            0,
            1_000,
            TxBody::Transfer { to, amount: 1 },
        );
        assert!(matches!(
            w.s.apply(&tx, 1, &w.p),
            Err(TxError::Funds { balance: 0, .. })
        ));
        assert_eq!(w.s, before);
    }

    #[test]
    fn a_transaction_signed_for_another_chain_is_refused() {
        let mut w = World::new();
        let before = w.s.clone();
        let to = Address([9; 20]);
        let body = TxBody::Transfer { to, amount: 1 };
        let tx = Tx::signed(&w.owner, &[0xc2; 32], 0, 1_000, body);
        assert_eq!(w.s.apply(&tx, 1, &w.p), Err(TxError::Signature));
        assert_eq!(w.s, before);
    }

    #[test]
    fn node_start_needs_the_node_keys_consent_for_this_owner_tier_endpoint_and_chain() {
        let mut w = World::new();
        let before = w.s.clone();
        let good = w.start_body(Tier::Cumulus, "127.0.0.1:16125");
        let TxBody::NodeStart {
            node_key, consent, ..
        } = good.clone()
        else {
            unreachable!()
        };
        let with = |tier, endpoint: &str, consent| TxBody::NodeStart {
            tier,
            node_key,
            endpoint: endpoint.into(),
            consent,
        };
        let stranger_made = crate::consent::sign(
            &key(),
            &w.p.chain,
            &w.owner_address(),
            Tier::Cumulus,
            "127.0.0.1:16125",
        );
        let other_chain = crate::consent::sign(
            &w.node,
            &[0xc2; 32],
            &w.owner_address(),
            Tier::Cumulus,
            "127.0.0.1:16125",
        );
        for (body, why) in [
            (
                with(Tier::Cumulus, "127.0.0.1:16125", [0; 64]),
                "carries no consent",
            ),
            (
                with(Tier::Cumulus, "127.0.0.1:16125", stranger_made),
                "did not consent",
            ),
            (
                with(Tier::Cumulus, "127.0.0.1:16125", other_chain),
                "did not consent",
            ),
            (
                with(Tier::Nimbus, "127.0.0.1:16125", consent),
                "tier Nimbus",
            ),
            (
                with(Tier::Cumulus, "10.0.0.1:16125", consent),
                "endpoint \"10.0.0.1:16125\"",
            ),
        ] {
            let e = w.send(false, body, 1).unwrap_err().to_string();
            assert!(e.contains(why), "{why}: {e}");
            assert_eq!(w.s, before);
        }
        // A consent made for the owner is worth nothing to anyone else.
        let stranger = key();
        w.s.credit(Address::from_public_key(&pk(&stranger)), 2_000 * COIN);
        let before = w.s.clone();
        let tx = Tx::signed(&stranger, &w.p.chain, 0, 1_000, good.clone());
        let e = w.s.apply(&tx, 1, &w.p).unwrap_err().to_string();
        assert!(e.contains("did not consent to owner"), "{e}");
        assert_eq!(w.s, before);
        w.send(false, good, 1).unwrap();
        assert_eq!(w.s.nodes[&node_key].owner, w.owner_address());
    }

    #[test]
    fn amounts_and_heights_that_would_overflow_are_refused() {
        let mut w = World::new();
        let rich = Address([9; 20]);
        w.s.credit(rich, u64::MAX - 1);
        let before = w.s.clone();
        let e = w
            .send(
                false,
                TxBody::Transfer {
                    to: rich,
                    amount: 2,
                },
                1,
            )
            .unwrap_err();
        assert_eq!(e, TxError::Overflow(format!("account {rich}: the balance")));
        w.p.app_price = 1;
        let mut s = spec("web");
        s.instances = 1;
        s.expiry_blocks = u64::MAX - 5;
        let e = w.send(false, TxBody::AppRegister(s), 10).unwrap_err();
        assert!(e.to_string().contains("expiry height overflows"), "{e}");
        assert_eq!(w.s, before);
    }

    #[test]
    fn node_start_locks_collateral_and_stop_unlocks_it_100_blocks_later() {
        let mut w = World::new();
        w.start(10).unwrap();
        assert_eq!(w.owner_balance(), 1_000 * COIN - 1_000);
        assert!(w
            .start(11)
            .unwrap_err()
            .to_string()
            .contains("already registered"));
        w.confirm(12).unwrap();
        let stop = TxBody::NodeStop {
            node_key: pk(&w.node),
        };
        w.send(false, stop, 20).unwrap();
        w.run_blocks(20, 119);
        assert!(w.s.nodes.contains_key(&pk(&w.node)), "still locked at 119");
        w.run_blocks(120, 120);
        assert!(!w.s.nodes.contains_key(&pk(&w.node)));
        assert_eq!(w.owner_balance(), 2_000 * COIN - 3 * 1_000 + 1_000);
    }

    #[test]
    fn the_confirm_window_is_240_blocks_then_the_dos_list_for_720() {
        let mut w = World::new();
        w.start(100).unwrap();
        w.run_blocks(100, 340);
        assert!(
            w.s.nodes.contains_key(&pk(&w.node)),
            "340 is the window's last block"
        );
        let mut late = World::new();
        late.start(100).unwrap();
        late.run_blocks(100, 340);
        assert!(late
            .confirm(341)
            .unwrap_err()
            .to_string()
            .contains("window has closed"));
        late.run_blocks(341, 341);
        assert!(!late.s.nodes.contains_key(&pk(&late.node)));
        assert_eq!(late.s.dos.get(&pk(&late.node)), Some(&(341 + 720)));
        assert_eq!(
            late.owner_balance(),
            2_000 * COIN - 1_000,
            "collateral returned"
        );
        assert!(late
            .start(1_060)
            .unwrap_err()
            .to_string()
            .contains("DoS list until height 1061"));
        late.run_blocks(1_061, 1_061);
        late.start(1_062).unwrap();
        w.confirm(340).unwrap();
    }

    #[test]
    fn reconfirm_waits_40_blocks_and_640_without_one_expires() {
        let mut w = World::new();
        w.start(0).unwrap();
        w.confirm(10).unwrap();
        assert!(w
            .confirm(49)
            .unwrap_err()
            .to_string()
            .contains("next confirm from 50"));
        w.confirm(50).unwrap();
        w.run_blocks(50, 690);
        assert!(
            w.s.nodes.contains_key(&pk(&w.node)),
            "690 = 50 + 640 still counts"
        );
        w.run_blocks(691, 691);
        assert!(!w.s.nodes.contains_key(&pk(&w.node)), "expired at 691");
        assert!(!w.s.dos.contains_key(&pk(&w.node)), "expiry is not DoS");
    }

    #[test]
    fn the_benchmark_must_be_the_nodes_signed_report_and_cover_its_tier_when_enforced() {
        let mut w = World::new();
        w.p.enforce_bench = true;
        w.p.collateral[1] = 10 * COIN;
        let body = w.start_body(Tier::Nimbus, "x");
        w.send(false, body, 0).unwrap();
        let confirm = |w: &mut World, claimed: Option<Tier>, report: Vec<u8>| {
            let body = TxBody::NodeConfirm {
                bench_tier: claimed,
                bench_report: report,
                workload: vec![],
            };
            w.send(true, body, 1)
        };
        let e = confirm(&mut w, Some(Tier::Nimbus), vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("benchmark report"), "no report: {e}");
        let cumulus = crate::attest::tests::report(Some("cumulus"), &w.node);
        let e = confirm(&mut w, Some(Tier::Nimbus), cumulus.clone())
            .unwrap_err()
            .to_string();
        assert!(e.contains("its report says Some(Cumulus)"), "{e}");
        let e = confirm(&mut w, Some(Tier::Cumulus), cumulus)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not cover Nimbus"), "{e}");
        let other = key();
        let foreign = crate::attest::tests::report(Some("stratus"), &other);
        assert!(confirm(&mut w, Some(Tier::Stratus), foreign).is_err());
        let stratus = crate::attest::tests::report(Some("stratus"), &w.node);
        confirm(&mut w, Some(Tier::Stratus), stratus).unwrap();
        assert_eq!(w.s.nodes[&pk(&w.node)].bench_tier, Some(Tier::Stratus));
    }

    #[test]
    fn a_view_decides_as_the_whole_state_for_its_transactions() {
        let mut w = World::new();
        w.start(0).unwrap();
        w.s.apps.insert(
            "web".into(),
            App {
                owner: Address::from_public_key(&pk(&w.owner)),
                spec: spec("web"),
                expires_at: 99,
            },
        );
        w.s.dos.insert([5; 32], 99);
        let to = Address([9; 20]);
        let confirm = TxBody::NodeConfirm {
            bench_tier: None,
            bench_report: vec![],
            workload: vec![],
        };
        let txs = [
            Tx::signed(
                &w.owner,
                &w.p.chain,
                1,
                1_000,
                TxBody::Transfer { to, amount: COIN },
            ),
            Tx::signed(&w.node, &w.p.chain, 0, 0, confirm),
            Tx::signed(
                &w.owner,
                &w.p.chain,
                2,
                1_000,
                TxBody::AppCancel { name: "web".into() },
            ),
            Tx::signed(
                &w.owner,
                &w.p.chain,
                3,
                1_000,
                TxBody::AppRegister(spec("web")),
            ),
            Tx::signed(
                &w.owner,
                &w.p.chain,
                4,
                1_000,
                TxBody::NodeStop {
                    node_key: pk(&w.node),
                },
            ),
            Tx::signed(
                &w.owner,
                &w.p.chain,
                5,
                1_000,
                TxBody::NodeStart {
                    tier: Tier::Cumulus,
                    node_key: [5; 32],
                    endpoint: "x".into(),
                    consent: [0; 64],
                },
            ),
            Tx::signed(
                &w.owner,
                &w.p.chain,
                5,
                1_000,
                TxBody::Transfer {
                    to,
                    amount: 5_000 * COIN,
                },
            ),
        ];
        let mut whole = w.s.clone();
        let mut view = w.s.view(&txs);
        assert!(view.nodes.len() == 1 && view.accounts.len() == 1);
        let mut refused = 0;
        for tx in &txs {
            let (v, all) = (view.apply(tx, 3, &w.p), whole.apply(tx, 3, &w.p));
            refused += v.is_err() as usize;
            assert_eq!(v, all, "{tx:?}");
        }
        assert_eq!(refused, 2, "the DoS-listed start and the overdraft");
    }

    #[test]
    fn apps_are_paid_up_front_owned_and_expire() {
        let mut w = World::new();
        let s = spec("web");
        let price = 2 * 1000 * w.p.app_price;
        w.send(false, TxBody::AppRegister(s.clone()), 5).unwrap();
        assert_eq!(w.owner_balance(), 2_000 * COIN - 1_000 - price);
        assert!(w.send(false, TxBody::AppRegister(s.clone()), 6).is_err());
        let other = key();
        w.s.credit(Address::from_public_key(&pk(&other)), COIN);
        let tx = Tx::signed(
            &other,
            &w.p.chain,
            0,
            1_000,
            TxBody::AppCancel { name: "web".into() },
        );
        assert!(w
            .s
            .apply(&tx, 7, &w.p)
            .unwrap_err()
            .to_string()
            .contains("not owned"));
        w.run_blocks(7, 1004);
        assert!(w.s.apps.contains_key("web"));
        w.run_blocks(1005, 1005);
        assert!(!w.s.apps.contains_key("web"), "expired at 5 + 1000");
        let mut bad = spec("Web!");
        bad.instances = 1;
        assert!(w.send(false, TxBody::AppRegister(bad), 1006).is_err());
    }

    #[test]
    fn evidence_of_two_headers_for_one_slot_stops_the_producer_and_bars_its_key() {
        let mut w = World::new();
        w.start(1).unwrap();
        w.confirm(2).unwrap();
        let header = |slot: u64, height: u64, k: &Ed25519KeyPair| {
            let mut h = crate::block::Header {
                height,
                prev: [height as u8; 32],
                slot,
                time: slot,
                producer: [0; 32],
                tx_root: [0; 32],
                state_digest: [0; 32],
                signature: [0; 64],
            };
            h.sign(k);
            Box::new(h)
        };
        let evidence = |a, b| TxBody::Evidence { a, b };
        let n = &w.node;
        let stranger = key();
        // Not evidence: one header twice, two slots, two producers, a forged signature, a
        // producer that is no node.
        let same = header(7, 5, n);
        let mut forged = header(7, 6, n);
        forged.height = 9;
        let wrong = [
            (same.clone(), same, "not two headers"),
            (header(7, 5, n), header(8, 5, n), "not two headers"),
            (header(7, 5, n), header(7, 6, &stranger), "not two headers"),
            (header(7, 5, n), forged, "not signed"),
            (
                header(7, 5, &stranger),
                header(7, 6, &stranger),
                "not registered",
            ),
        ];
        let real = evidence(header(7, 5, n), header(7, 6, n));
        let later = evidence(header(9, 5, n), header(9, 6, n));
        for (a, b, why) in wrong {
            let e = w.send(false, evidence(a, b), 3).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
        // Real evidence, sent free by anyone: the node stops and its key is barred.
        let before = w.owner_balance();
        let tx = Tx::signed(&stranger, &w.p.chain, 0, 0, real);
        assert_eq!(w.s.apply(&tx, 3, &w.p), Ok(0));
        let node = &w.s.nodes[&pk(&w.node)];
        assert!(matches!(node.status, NodeStatus::Stopping { .. }));
        assert_eq!(w.s.dos.get(&pk(&w.node)), Some(&(3 + w.p.dos_blocks)));
        assert_eq!(w.owner_balance(), before);
        // Once is enough.
        let again = Tx::signed(&stranger, &w.p.chain, 1, 0, later);
        let e = w.s.apply(&again, 4, &w.p).unwrap_err();
        assert!(e.to_string().contains("already on the DoS list"), "{e}");
    }
}
