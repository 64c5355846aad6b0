//! Every RPC method against a small devnet with a real sled store, and every kind of
//! JSON-RPC error.

use serde_json::{json, Value};

use super::*;
use crate::testnet::{net, pk, T0};
use crate::tx::TxBody;

struct Fixture {
    n: crate::testnet::Net,
    ledger: Ledger,
    store: Store,
    mempool: Mempool,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let n = net(&[1, 3]);
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut ledger = store.load(n.genesis.clone()).unwrap();
    let mut s = crate::tx::tests::spec("web");
    s.instances = 1;
    s.ram_bytes = 1 << 20;
    s.disk_bytes = 1 << 20;
    let txs = vec![
        Tx::signed(
            &n.wallet,
            &n.genesis.hash(),
            0,
            5_000,
            TxBody::Transfer {
                to: Address([0xaa; 20]),
                amount: COIN,
            },
        ),
        Tx::signed(
            &n.wallet,
            &n.genesis.hash(),
            1,
            5_000,
            TxBody::AppRegister(s),
        ),
    ];
    for i in 0..3 {
        let b = n.next(&ledger, if i == 1 { &txs } else { &[] });
        let applied = ledger.apply(&b, T0 + 1_000).unwrap();
        store.commit(&b, &applied, &ledger).unwrap();
    }
    Fixture {
        n,
        ledger,
        store,
        mempool: Mempool::default(),
        _dir: dir,
    }
}

impl Fixture {
    fn call(&mut self, method: &str, params: Value, authorized: bool) -> Value {
        let mut rpc = Rpc {
            ledger: &self.ledger,
            store: &self.store,
            mempool: &mut self.mempool,
            authorized,
            peers: 2,
            version: "test",
            relay: Vec::new(),
        };
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        rpc.handle(body.to_string().as_bytes()).unwrap()
    }

    fn ok(&mut self, method: &str, params: Value) -> Value {
        let r = self.call(method, params, true);
        assert_eq!(r["id"], 7);
        assert!(r.get("error").is_none(), "{method}: {r}");
        r["result"].clone()
    }

    fn code(&mut self, method: &str, params: Value, authorized: bool) -> i64 {
        self.call(method, params, authorized)["error"]["code"]
            .as_i64()
            .unwrap()
    }
}

#[test]
fn every_method_answers() {
    let mut f = fixture();
    assert_eq!(f.ok("getblockcount", json!([])), 3);
    let info = f.ok("getinfo", json!([]));
    assert_eq!(
        (info["blocks"].as_u64(), info["connections"].as_u64()),
        (Some(3), Some(2))
    );
    let best = f.ok("getbestblockhash", json!([]));
    assert_eq!(f.ok("getblockhash", json!([3])), best);
    assert_eq!(
        f.ok("getblockhash", json!([0])),
        json!(hex::encode(f.ledger.root))
    );
    let b2 = f.ok("getblock", json!([2]));
    assert_eq!(b2["tx"].as_array().unwrap().len(), 2);
    assert_eq!(f.ok("getblock", json!([b2["hash"]]))["height"], 2);
    let raw = f.ok("getrawtransaction", json!([b2["tx"][0]]));
    assert!(Tx::decode(&hex::decode(raw.as_str().unwrap()).unwrap()).is_ok());
    let verbose = f.ok("getrawtransaction", json!([b2["tx"][0], true]));
    assert_eq!(
        (verbose["height"].as_u64(), verbose["type"].as_str()),
        (Some(2), Some("Transfer"))
    );
    assert_eq!(
        f.ok("getbalance", json!([Address([0xaa; 20]).to_string()]))["coins"],
        "1.00000000"
    );
    let key = hex::encode(pk(&f.n.keys[1]));
    let st = f.ok("getfluxnodestatus", json!([key]));
    assert_eq!(
        (st["tier"].as_str(), st["status"].as_str()),
        (Some("STRATUS"), Some("CONFIRMED"))
    );
    assert_eq!(
        f.ok("listfluxnodes", json!([])).as_array().unwrap().len(),
        2
    );
    let count = f.ok("getfluxnodecount", json!([]));
    assert_eq!(
        (count["total"].as_u64(), count["stratus"].as_u64()),
        (Some(2), Some(1))
    );
    let list = f.ok("viewdeterministicfluxnodelist", json!([]));
    assert_eq!(list[0]["rank"], 0);
    assert_eq!(f.ok("getbenchmarks", json!([key]))["tier"], "STRATUS");
    assert_eq!(f.ok("getbenchstatus", json!([key]))["status"], "CONFIRMED");
    assert_eq!(f.ok("listapps", json!([]))[0]["name"], "web");
    assert_eq!(f.ok("getappspecs", json!(["web"]))["instances"], 1);
    let loc = f.ok("getapplocation", json!(["web"]));
    assert_eq!(loc.as_array().unwrap().len(), 1);
    let t = Tx::signed(
        &f.n.wallet,
        &f.n.genesis.hash(),
        2,
        5_000,
        TxBody::Transfer {
            to: Address([2; 20]),
            amount: 1,
        },
    );
    let id = f.ok("sendrawtransaction", json!([hex::encode(t.encode())]));
    assert_eq!(id, json!(hex::encode(t.id())));
    assert_eq!(
        f.ok("getrawtransaction", json!([id, 1]))["height"],
        Value::Null,
        "in the mempool"
    );
    let pool = f.ok("getmempoolinfo", json!([]));
    assert_eq!(
        (pool["size"].as_u64(), pool["ready"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(pool["bytes"].as_u64(), Some(t.encode().len() as u64));
    assert_eq!(METHODS.len(), 18);
}

#[test]
fn errors_are_json_rpc_errors() {
    let mut f = fixture();
    let t = Tx::signed(
        &f.n.wallet,
        &f.n.genesis.hash(),
        2,
        5_000,
        TxBody::Transfer {
            to: Address([2; 20]),
            amount: 1,
        },
    );
    assert_eq!(
        f.code(
            "sendrawtransaction",
            json!([hex::encode(t.encode())]),
            false
        ),
        -32001
    );
    assert_eq!(f.code("sendrawtransaction", json!(["zz"]), true), -22);
    assert_eq!(f.code("sendrawtransaction", json!(["0100"]), true), -22);
    let spent = Tx::signed(
        &f.n.wallet,
        &f.n.genesis.hash(),
        0,
        5_000,
        TxBody::Transfer {
            to: Address([2; 20]),
            amount: 1,
        },
    );
    assert_eq!(
        f.code(
            "sendrawtransaction",
            json!([hex::encode(spent.encode())]),
            true
        ),
        -26
    );
    assert_eq!(f.code("nosuchmethod", json!([]), true), -32601);
    assert_eq!(f.code("getblockhash", json!(["x"]), true), -32602);
    assert_eq!(f.code("getblockhash", json!([99]), true), -8);
    assert_eq!(f.code("getbalance", json!(["fxnope"]), true), -5);
    assert_eq!(f.code("getappspecs", json!(["nope"]), true), -5);
    assert_eq!(f.code("getfluxnodestatus", json!(["00"]), true), -8);
    let mut rpc = Rpc {
        ledger: &f.ledger,
        store: &f.store,
        mempool: &mut f.mempool,
        authorized: false,
        peers: 0,
        version: "test",
        relay: Vec::new(),
    };
    assert_eq!(rpc.handle(b"{not json").unwrap()["error"]["code"], -32700);
    assert_eq!(rpc.handle(b"[]").unwrap()["error"]["code"], -32600);
    assert_eq!(rpc.handle(b"{\"id\":1}").unwrap()["error"]["code"], -32600);
    assert!(
        rpc.handle(b"{\"jsonrpc\":\"2.0\",\"method\":\"getblockcount\"}")
            .is_none(),
        "notification"
    );
    let batch = rpc
        .handle(br#"[{"jsonrpc":"2.0","id":1,"method":"getblockcount"},{"jsonrpc":"2.0","id":2,"method":"x"}]"#)
        .unwrap();
    assert_eq!(
        (
            batch[0]["result"].as_u64(),
            batch[1]["error"]["code"].as_i64()
        ),
        (Some(3), Some(-32601))
    );
}

#[test]
fn only_calls_that_list_nodes_are_answered_from_a_copy_of_the_ledger() {
    use super::only_node_lists;
    assert!(only_node_lists(
        br#"{"jsonrpc":"2.0","id":1,"method":"listfluxnodes"}"#
    ));
    assert!(only_node_lists(
        br#"[{"id":1,"method":"listfluxnodes"},{"id":2,"method":"viewdeterministicfluxnodelist"}]"#
    ));
    // A method that reads the mempool must see the real one, even beside a list.
    assert!(!only_node_lists(
        br#"[{"id":1,"method":"listfluxnodes"},{"id":2,"method":"getrawtransaction","params":["00"]}]"#
    ));
    // The name inside a parameter is not the method.
    assert!(!only_node_lists(
        br#"{"id":1,"method":"sendrawtransaction","params":["listfluxnodes"]}"#
    ));
    assert!(!only_node_lists(b"[]"));
    assert!(!only_node_lists(b"listfluxnodes"));
}
