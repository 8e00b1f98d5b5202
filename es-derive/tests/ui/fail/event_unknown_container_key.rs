use es_core::Event;

#[derive(Event)]
#[event(name = "account")]
enum AccountEvent {
    Opened,
}

fn main() {}
