use es_core::Aggregate;

#[derive(Default, serde::Serialize, serde::Deserialize, Aggregate)]
#[aggregate(snapshot_every = 10, snapshot_version = 0)]
struct Account {
    balance: u64,
}

fn main() {}
