use es_core::Event;

#[derive(Event)]
enum TransferEvent {
    Sent {
        #[event(subject)]
        from_id: String,
        to_id: String,
        #[event(personal(subject = to_id))]
        message: String,
        #[event(personal(subject = nobody))]
        note: String,
    },
}

fn main() {}
