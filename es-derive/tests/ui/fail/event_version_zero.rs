use es_core::Event;

#[derive(Event)]
#[event(version = 0)]
enum AccountEvent {
    #[event(version = 0)]
    Opened,
    #[event(version = 2, upcast(0 = ()))]
    Closed,
}

fn main() {}
