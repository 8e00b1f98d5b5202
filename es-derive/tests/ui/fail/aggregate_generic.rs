use es_core::Aggregate;

#[derive(Default, Aggregate)]
struct Account<T> {
    balance: T,
}

fn main() {}
