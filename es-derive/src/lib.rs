//! Derive macros of the `es` event-sourcing framework: `#[derive(Event)]` and
//! `#[derive(Aggregate)]`.
//!
//! Do not depend on this crate directly: `es-core` re-exports both derives
//! (`es_core::Event`, `es_core::Aggregate`) and documents their attributes
//! there. The generated code names everything by absolute `::es_core::…` paths,
//! and serde only through `::es_core::__private::serde`, so a crate that uses
//! the derives needs `es-core` as its only dependency.

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

mod aggregate;
mod event;

/// Derives `es_core::Event` for an enum of event types.
///
/// See `es_core::Event` (the derive) for the `#[event(...)]` attributes. Field
/// `#[serde(...)]` attributes are honoured: they are copied onto the helper
/// types each variant is encoded through.
#[proc_macro_derive(Event, attributes(event, serde))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let ast = parse_macro_input!(input as DeriveInput);
    event::expand(&ast)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `es_core::AggregateType` for an aggregate's state.
///
/// See `es_core::Aggregate` (the derive) for the `#[aggregate(...)]` attribute.
#[proc_macro_derive(Aggregate, attributes(aggregate))]
pub fn derive_aggregate(input: TokenStream) -> TokenStream {
    let ast = parse_macro_input!(input as DeriveInput);
    aggregate::expand(&ast)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
