use es_core::Event;

#[derive(Event)]
enum AccountEvent {
    Opened {
        #[event(subject, personal)]
        email: String,
    },
}

fn main() {}
