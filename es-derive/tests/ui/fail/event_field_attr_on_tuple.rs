use es_core::Event;

#[derive(Event)]
enum AccountEvent {
    Opened(#[event(subject)] String, #[event(personal)] String),
}

fn main() {}
