use es_core::Event;

#[derive(Event)]
enum AccountEvent {
    Opened {
        owner_id: String,
        #[event(personal)]
        owner_name: String,
    },
}

fn main() {}
