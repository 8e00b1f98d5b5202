use es_core::Event;

#[derive(Event)]
enum TransferEvent {
    Sent {
        #[event(subject)]
        from_id: String,
        #[event(subject)]
        to_id: String,
        #[event(personal)]
        message: String,
    },
}

fn main() {}
