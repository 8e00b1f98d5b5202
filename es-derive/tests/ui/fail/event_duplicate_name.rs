use es_core::Event;

#[derive(Event)]
enum AccountEvent {
    Opened,
    #[event(name = "Opened")]
    Reopened,
    #[event(name = "Closed")]
    Closed,
    #[event(name = "Closed")]
    Shut,
}

fn main() {}
