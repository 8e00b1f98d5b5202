use es_core::Event;

#[derive(Event)]
union Raw {
    bits: u64,
}

fn main() {}
