use es_core::Aggregate;

#[derive(Default, Aggregate)]
#[aggregate(name = "account", snapshots = 10)]
struct Account {
    balance: u64,
}

fn main() {}
