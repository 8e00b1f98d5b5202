use es_core::Event;

#[derive(Event)]
enum Generic<T> {
    Happened { value: T },
}

fn main() {}
