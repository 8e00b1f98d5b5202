use es_core::{Event, SubjectId};

#[derive(Event)]
enum AccountEvent {
    Opened {
        #[event(subject)]
        owner_id: SubjectId,
        #[event(personal)]
        owner_name: String,
    },
}

fn main() {}
