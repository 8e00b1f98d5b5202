use es_core::Event;

#[derive(Event)]
enum AccountEvent {
    #[event(name = "Opened", foo = 1)]
    Opened,
}

fn main() {}
