use es_core::Event;

#[derive(Event)]
enum AccountEvent {
    Opened {
        #[event(subject)]
        owner_id: String,
        #[event(personal(owner = owner_id))]
        name: String,
        #[event(secret)]
        pin: String,
    },
}

fn main() {}
