use es_core::Event;

#[derive(serde::Deserialize)]
struct DepositedV1 {
    amount: u32,
}

#[derive(Event)]
enum AccountEvent {
    #[event(version = 3, upcast(1 = DepositedV1, 1 = DepositedV1))]
    Deposited { amount: u64 },
}

fn main() {}
