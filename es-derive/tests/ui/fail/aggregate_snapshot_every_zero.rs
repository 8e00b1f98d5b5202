use es_core::Aggregate;

#[derive(Default, serde::Serialize, serde::Deserialize, Aggregate)]
#[aggregate(name = "account", snapshot_every = 0)]
struct Account {
    balance: u64,
}

fn main() {}
