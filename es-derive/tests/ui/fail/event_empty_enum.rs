use es_core::Event;

#[derive(Event)]
enum Nothing {}

fn main() {}
