//! The generated code names everything by absolute path: it compiles without
//! the prelude, and with local items shadowing prelude and serde names.

#![no_implicit_prelude]
#![deny(warnings)]

mod serde {}
mod core {}

#[allow(dead_code)]
struct Result;
#[allow(dead_code)]
struct Ok;
#[allow(dead_code)]
struct Some;
#[allow(dead_code)]
struct Vec;
#[allow(dead_code)]
struct Event;
#[allow(dead_code)]
struct Error;

#[derive(::es_core::Event)]
enum Shapes {
    Struct {
        #[event(subject)]
        id: ::es_core::SubjectId,
        #[event(personal)]
        #[serde(rename = "n")]
        name: ::es_core::Personal<::std::string::String>,
        #[event(personal)]
        phone: ::std::option::Option<::es_core::Personal<::std::string::String>>,
        #[event(personal)]
        aliases: ::std::vec::Vec<::es_core::Personal<u64>>,
    },
    Tuple(u64),
    Pair(u64, bool),
    Unit,
}

#[derive(::es_core::Aggregate)]
#[aggregate(name = "plain")]
struct Plain;

fn main() {
    let _ = <Shapes as ::es_core::Event>::TYPES;
    let _ = <Plain as ::es_core::AggregateType>::TYPE_NAME;
    let id = ::es_core::SubjectId::new("s").unwrap();
    let _ = (
        Shapes::Struct {
            name: ::es_core::Personal::shredded(::std::clone::Clone::clone(&id)),
            phone: ::std::option::Option::None,
            aliases: ::std::vec::Vec::new(),
            id,
        },
        Shapes::Tuple(1),
        Shapes::Pair(1, true),
        Shapes::Unit,
    );
}
