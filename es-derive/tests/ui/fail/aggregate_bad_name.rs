use es_core::Aggregate;

#[derive(Default, Aggregate)]
#[aggregate(name = "")]
struct Account {
    balance: u64,
}

fn main() {}
