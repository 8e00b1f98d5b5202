//! The store conformance suite from es-core, on a fresh database per test.

use es_store_postgres::testing::fresh_store;

es_core::store_conformance_tests!(fresh_store);
