//! Loading: bad files are rejected with the file and the cause; the artifact
//! cache makes a second start skip compilation.

use std::path::Path;

use corral_runtime::{CacheOutcome, LoadError, RuntimeConfig};

use crate::Harness;

#[tokio::test]
async fn rejects_files_that_are_not_components() {
    let harness = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("garbage.wasm", b"this is not wasm at all", "not a WebAssembly binary"),
        ("core.wasm", b"\0asm\x01\0\0\0", "core WebAssembly module, not a component"),
        ("truncated.wasm", b"\0asm\x0d\0\x01\0\x07", "does not compile"),
    ];
    for (name, bytes, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let error = harness.runtime.load(&path, Default::default()).await.unwrap_err();
        let message = error.to_string();
        assert!(message.contains(name), "names the file: {message}");
        assert!(message.contains(expected), "{name}: {message}");
    }
    let missing = harness.runtime.load(Path::new("/no/such/plugin.wasm"), Default::default()).await.unwrap_err();
    assert!(matches!(missing, LoadError::Read { .. }), "{missing}");
}

#[tokio::test]
async fn a_warm_cache_skips_compilation() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig { cache_dir: Some(cache.path().to_path_buf()), ..Default::default() };
    let cold = Harness::with_config(config.clone()).load(corral_fixtures::ROUTE_ECHO).await;
    assert_eq!(cold.cache_outcome(), CacheOutcome::Miss);
    // A new runtime is a restart: same settings, same directory.
    let warm = Harness::with_config(config.clone()).load(corral_fixtures::ROUTE_ECHO).await;
    assert_eq!(warm.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(warm.content_hash(), cold.content_hash());
    assert_eq!(warm.descriptor(), cold.descriptor());
    assert!(warm.load_time() < cold.load_time(), "{:?} vs {:?}", warm.load_time(), cold.load_time());

    // A corrupt artifact is ignored and replaced, never fatal. (Replaced by
    // rename, as the cache itself writes: a live artifact is memory-mapped.)
    drop((cold, warm));
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        let path = entry.unwrap().path();
        let corrupt = path.with_extension("tmp");
        std::fs::write(&corrupt, b"corrupt").unwrap();
        std::fs::rename(&corrupt, &path).unwrap();
    }
    let repaired = Harness::with_config(config.clone()).load(corral_fixtures::ROUTE_ECHO).await;
    assert_eq!(repaired.cache_outcome(), CacheOutcome::Miss);
    let warm_again = Harness::with_config(config).load(corral_fixtures::ROUTE_ECHO).await;
    assert_eq!(warm_again.cache_outcome(), CacheOutcome::Hit);

    // Another engine configuration never reuses these artifacts.
    let unmetered =
        RuntimeConfig { cache_dir: Some(cache.path().to_path_buf()), metering: false, ..Default::default() };
    let other = Harness::with_config(unmetered).load(corral_fixtures::ROUTE_ECHO).await;
    assert_eq!(other.cache_outcome(), CacheOutcome::Miss);
}
