use es_core::Aggregate;

#[derive(Aggregate)]
union Account {
    balance: u64,
}

fn main() {}
