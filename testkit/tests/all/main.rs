//! The test kit's own tests (driving the guest fixtures, including
//! expectations that must fail) and example tests of the shop's plugins.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

mod carts;
mod events;
mod projections;
mod routes;
mod shop;
mod spec;

use std::path::PathBuf;

use corral_testkit::{Mismatch, Options, TestKit};

/// Shared by every test so each component is compiled once per run.
fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corral-testkit-cache")
}

/// Loads a fixture with the shared cache.
async fn kit(path: &str) -> TestKit {
    TestKit::load_with(path, Options { cache_dir: Some(cache_dir()), ..Options::default() }).await.unwrap()
}

/// The text of a mismatch that must have happened.
fn mismatch(result: Result<impl Sized, Mismatch>) -> String {
    match result {
        Ok(_) => panic!("the expectation should not hold"),
        Err(mismatch) => mismatch.to_string(),
    }
}
