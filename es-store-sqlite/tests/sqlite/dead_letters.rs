//! The dead-letter suite from es-core, on a fresh file per test.

use es_store_sqlite::testing::fresh_store;

es_core::dead_letter_conformance_tests!(fresh_store);
