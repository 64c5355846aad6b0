//! State entries as bytes: the canonical encoding of each key, and decoding an entry's
//! value back into the state (how the store rebuilds the state at startup). The values are
//! written by `State::entry_bytes`; the two are tested against each other.

use crate::address::Address;
use crate::encode::{DecodeError, Reader, Writer};
use crate::state::{Account, App, Node, NodeStatus, State, StateKey};
use crate::tx::{InstanceUsage, Tier};

impl StateKey {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            StateKey::Account(a) => w.u8(1).fixed(&a.0),
            StateKey::Node(n) => w.u8(2).fixed(n),
            StateKey::Dos(n) => w.u8(3).fixed(n),
            StateKey::App(s) => w.u8(4).str(s),
        };
        w.finish()
    }

    pub fn decode(bytes: &[u8]) -> Result<StateKey, DecodeError> {
        let mut r = Reader::new(bytes, "state key");
        let k = match r.u8()? {
            1 => StateKey::Account(Address(r.fixed()?)),
            2 => StateKey::Node(r.fixed()?),
            3 => StateKey::Dos(r.fixed()?),
            4 => StateKey::App(r.str(64)?),
            t => return Err(r.err(format!("key kind {t} is unknown"))),
        };
        r.end()?;
        Ok(k)
    }
}

fn tier(r: &mut Reader) -> Result<Option<Tier>, DecodeError> {
    let v = r.u8()?;
    if v == 0 {
        return Ok(None);
    }
    Tier::ALL
        .into_iter()
        .find(|t| *t as u8 == v)
        .map(Some)
        .ok_or_else(|| r.err(format!("tier {v} is unknown")))
}

impl State {
    /// Every entry's key, in key order.
    pub fn keys(&self) -> impl Iterator<Item = StateKey> + '_ {
        let accounts = self.accounts.keys().map(|a| StateKey::Account(*a));
        let nodes = self.nodes.keys().map(|k| StateKey::Node(*k));
        let dos = self.dos.keys().map(|k| StateKey::Dos(*k));
        let apps = self.apps.keys().map(|n| StateKey::App(n.clone()));
        accounts.chain(nodes).chain(dos).chain(apps)
    }

    /// Sets an entry to an encoded value, or removes it (None): how an undo record puts
    /// back what a block changed.
    pub fn set_entry(&mut self, key: StateKey, value: Option<&[u8]>) -> Result<(), DecodeError> {
        match value {
            Some(v) => self.insert_entry(key, v),
            None => {
                match &key {
                    StateKey::Account(a) => self.accounts.remove(a).map(|_| ()),
                    StateKey::Node(k) => self.nodes.remove(k).map(|_| ()),
                    StateKey::Dos(k) => self.dos.remove(k).map(|_| ()),
                    StateKey::App(n) => self.apps.remove(n).map(|_| ()),
                };
                Ok(())
            }
        }
    }

    /// Puts an entry read from storage into the state.
    pub fn insert_entry(&mut self, key: StateKey, value: &[u8]) -> Result<(), DecodeError> {
        let mut r = Reader::new(value, "state entry");
        match key {
            StateKey::Account(a) => {
                let acc = Account {
                    balance: r.u64()?,
                    nonce: r.u64()?,
                };
                self.accounts.insert(a, acc);
            }
            StateKey::Node(k) => {
                let owner = Address(r.fixed()?);
                let t = tier(&mut r)?.ok_or_else(|| r.err("a node has no tier"))?;
                let endpoint = r.str(1024)?;
                let started_at = r.u64()?;
                let status = match (r.u8()?, r.u64()?) {
                    (1, _) => NodeStatus::Started,
                    (2, last) => NodeStatus::Confirmed { last },
                    (3, unlock_at) => NodeStatus::Stopping { unlock_at },
                    (s, _) => return Err(r.err(format!("node status {s} is unknown"))),
                };
                let node = Node {
                    owner,
                    tier: t,
                    endpoint,
                    started_at,
                    status,
                    collateral: r.u64()?,
                    bench_tier: tier(&mut r)?,
                    workload: r.list(1024, |r| {
                        Ok(InstanceUsage {
                            app: r.str(64)?,
                            instance: r.u32()?,
                            running: r.u8()? == 1,
                            cpu_usage_usec: r.u64()?,
                            memory_peak: r.u64()?,
                        })
                    })?,
                    last_paid: r.u64()?,
                };
                self.nodes.insert(k, node);
            }
            StateKey::Dos(k) => {
                self.dos.insert(k, r.u64()?);
            }
            StateKey::App(name) => {
                let owner = Address(r.fixed()?);
                let expires_at = r.u64()?;
                let spec = crate::tx::get_spec(&mut r)?;
                self.apps.insert(
                    name,
                    App {
                        owner,
                        spec,
                        expires_at,
                    },
                );
            }
        }
        r.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tx::tests::spec;

    #[test]
    fn every_kind_of_entry_round_trips_through_bytes() {
        let mut s = State::default();
        s.accounts.insert(
            Address([1; 20]),
            Account {
                balance: 5,
                nonce: 2,
            },
        );
        s.nodes.insert(
            [2; 32],
            Node {
                owner: Address([3; 20]),
                tier: Tier::Nimbus,
                endpoint: "10.0.0.1:16125".into(),
                started_at: 4,
                status: NodeStatus::Confirmed { last: 9 },
                collateral: 12,
                bench_tier: Some(Tier::Stratus),
                workload: vec![InstanceUsage {
                    app: "web".into(),
                    instance: 1,
                    running: true,
                    cpu_usage_usec: 3,
                    memory_peak: 4,
                }],
                last_paid: 8,
            },
        );
        s.dos.insert([5; 32], 77);
        s.apps.insert(
            "web".into(),
            App {
                owner: Address([6; 20]),
                spec: spec("web"),
                expires_at: 99,
            },
        );
        let keys = [
            StateKey::Account(Address([1; 20])),
            StateKey::Node([2; 32]),
            StateKey::Dos([5; 32]),
            StateKey::App("web".into()),
        ];
        let mut back = State::default();
        for k in keys {
            let kb = k.encode();
            let k2 = StateKey::decode(&kb).unwrap();
            back.insert_entry(k2, &s.entry_bytes(&k).unwrap()).unwrap();
        }
        assert_eq!(back, s);
        assert!(StateKey::decode(&[9]).is_err());
        assert!(back
            .insert_entry(StateKey::Dos([1; 32]), &[1, 2, 3])
            .is_err());
    }
}
