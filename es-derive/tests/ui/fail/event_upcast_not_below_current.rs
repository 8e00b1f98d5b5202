use es_core::Event;

#[derive(serde::Deserialize)]
struct DepositedV2 {
    amount: u64,
}

#[derive(Event)]
enum AccountEvent {
    #[event(version = 2, upcast(2 = DepositedV2))]
    Deposited { amount: u64 },
    #[event(upcast(1 = DepositedV2))]
    Withdrawn { amount: u64 },
}

fn main() {}
