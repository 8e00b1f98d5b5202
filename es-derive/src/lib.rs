//! Derive macros: written by a helper.
