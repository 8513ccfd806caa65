//! The store conformance suite: one set of checks that every backend runs (memory, local
//! files, the in-process S3 server, Garage, and any of them behind the link emulator), in the
//! spirit of object_store's `integration.rs`.
//!
//! Each check panics with a message naming the backend and what differed.

use bytes::Bytes;
use strata_store::{ConditionalCreate, CreateOutcome, ErrorKind, Store, TransferConfig};

use crate::data;

/// What the backend under test is expected to do where backends legitimately differ.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// How the backend treats conditional create.
    pub conditional_create: ConditionalCreate,
}

/// Runs every check under `prefix` (a key prefix private to this run).
pub async fn run_all(store: &Store, prefix: &str, expect: Expect) {
    let p = prefix.trim_end_matches('/');
    put_get_head(store, &format!("{p}/basic")).await;
    ranged_get(store, &format!("{p}/ranged")).await;
    list_prefix_and_delimiter(store, &format!("{p}/list")).await;
    delete(store, &format!("{p}/delete")).await;
    multipart(store, &format!("{p}/multipart")).await;
    download_to_file(store, &format!("{p}/file")).await;
    conditional_create(store, &format!("{p}/cond"), expect).await;
    missing_objects(store, &format!("{p}/missing")).await;
    pending_uploads(store, &format!("{p}/pending")).await;
}

/// Small transfer settings, so multipart and parallel paths run on small objects.
pub fn small_parts() -> TransferConfig {
    TransferConfig {
        part_size: 1 << 20,
        concurrency: 4,
        upload_part_size: 5 << 20,
        upload_concurrency: 3,
        single_put_threshold: 5 << 20,
        files_in_flight: 4,
    }
}

/// PUT, GET and HEAD agree on bytes, size and ETag.
pub async fn put_get_head(store: &Store, p: &str) {
    let root = store.root();
    for (i, len) in [0usize, 1, 1000, 300_000].into_iter().enumerate() {
        let key = format!("{p}/obj-{i}");
        let body = Bytes::from(data::bytes(i as u64, len));
        store
            .put(&key, body.clone())
            .await
            .unwrap_or_else(|e| panic!("{root}: put {key}: {e}"));
        let got = store
            .get(&key)
            .await
            .unwrap_or_else(|e| panic!("{root}: get {key}: {e}"));
        assert_eq!(got, body, "{root}: {key} read back differs");
        let info = store
            .head(&key)
            .await
            .unwrap_or_else(|e| panic!("{root}: head {key}: {e}"));
        assert_eq!(info.size, len as u64, "{root}: {key} size");
        assert_eq!(info.key, key, "{root}: head key");
    }
    // Overwrite replaces.
    let key = format!("{p}/obj-1");
    store
        .put(&key, Bytes::from_static(b"new"))
        .await
        .expect("overwrite");
    assert_eq!(
        store.get(&key).await.expect("get"),
        Bytes::from_static(b"new"),
        "{root}: overwrite"
    );
}

/// Ranged GETs return exactly the bytes asked for, and a stale ETag is refused.
pub async fn ranged_get(store: &Store, p: &str) {
    let root = store.root();
    let key = format!("{p}/obj");
    let body = data::bytes(42, 1 << 20);
    store
        .put(&key, Bytes::from(body.clone()))
        .await
        .expect("put");
    let e_tag = store.head(&key).await.expect("head").e_tag;
    for r in [
        0..1u64,
        0..4096,
        1000..70_000,
        (1 << 20) - 1..1 << 20,
        500_000..1 << 20,
    ] {
        let got = store
            .get_range(&key, r.clone(), e_tag.as_deref())
            .await
            .unwrap_or_else(|e| panic!("{root}: range {r:?}: {e}"));
        assert_eq!(
            &got[..],
            &body[r.start as usize..r.end as usize],
            "{root}: range {r:?}"
        );
    }
    // A stale ETag is caught.
    if e_tag.is_some() {
        let err = store
            .get_range(&key, 0..10, Some("\"not-the-etag\""))
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Precondition,
            "{root}: stale etag: {err}"
        );
    }
}

/// Listings honour the prefix and the delimiter.
pub async fn list_prefix_and_delimiter(store: &Store, p: &str) {
    let root = store.root();
    let keys = ["a/1", "a/2", "b/1", "c", "cc/x"];
    for k in keys {
        store
            .put(&format!("{p}/{k}"), Bytes::from(k.as_bytes().to_vec()))
            .await
            .expect("put");
    }
    let all = store
        .list(p)
        .await
        .unwrap_or_else(|e| panic!("{root}: list: {e}"));
    let got: Vec<String> = all
        .iter()
        .map(|o| {
            o.key
                .strip_prefix(&format!("{p}/"))
                .unwrap_or(&o.key)
                .to_string()
        })
        .collect();
    assert_eq!(got, keys, "{root}: recursive listing");
    let sub = store.list(&format!("{p}/a")).await.expect("list a");
    assert_eq!(sub.len(), 2, "{root}: listing of {p}/a: {sub:?}");
    // Prefixes are directories: `c` is an object, not a directory, and `cc/x` is not under it.
    let c = store.list(&format!("{p}/c")).await.expect("list c");
    assert!(
        c.is_empty(),
        "{root}: {p}/c must not match the object c or {p}/cc/x: {c:?}"
    );
    let dir = store
        .list_dir(p)
        .await
        .unwrap_or_else(|e| panic!("{root}: list_dir: {e}"));
    let objs: Vec<&str> = dir
        .objects
        .iter()
        .map(|o| o.key.rsplit('/').next().unwrap_or_default())
        .collect();
    let pre: Vec<&str> = dir
        .prefixes
        .iter()
        .map(|s| s.rsplit('/').next().unwrap_or_default())
        .collect();
    assert_eq!(objs, ["c"], "{root}: delimiter objects");
    assert_eq!(pre, ["a", "b", "cc"], "{root}: delimiter prefixes");
    let none = store
        .list(&format!("{p}/nothing-here"))
        .await
        .expect("empty list");
    assert!(none.is_empty(), "{root}: empty prefix");
}

/// A deleted object is gone, and deleting it again is no error.
pub async fn delete(store: &Store, p: &str) {
    let root = store.root();
    let key = format!("{p}/gone");
    store
        .put(&key, Bytes::from_static(b"x"))
        .await
        .expect("put");
    store
        .delete(&key)
        .await
        .unwrap_or_else(|e| panic!("{root}: delete: {e}"));
    let err = store.head(&key).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "{root}: head after delete: {err}"
    );
    store
        .delete(&key)
        .await
        .unwrap_or_else(|e| panic!("{root}: deleting a missing object must succeed: {e}"));
}

/// A multipart upload reads back bit-exact with its CRC32C.
pub async fn multipart(store: &Store, p: &str) {
    let root = store.root();
    let key = format!("{p}/big");
    let opts = small_parts();
    let body = Bytes::from(data::bytes(7, (12 << 20) + 123));
    let up = store
        .upload_bytes(body.clone(), &key, &opts, None)
        .await
        .unwrap_or_else(|e| panic!("{root}: multipart upload: {e}"));
    assert!(
        up.multipart,
        "{root}: 12 MiB with 5 MiB parts must be multipart"
    );
    assert_eq!(up.parts, 3, "{root}: part count");
    assert_eq!(up.crc32c, crc32c::crc32c(&body), "{root}: combined CRC32C");
    assert_eq!(up.part_crc32c.len(), 3);
    let (got, down) = store
        .download_to_vec(&key, &opts)
        .await
        .unwrap_or_else(|e| panic!("{root}: download: {e}"));
    assert_eq!(got.len(), body.len(), "{root}: size after multipart");
    assert!(got == body, "{root}: content after multipart differs");
    assert_eq!(down.crc32c, up.crc32c, "{root}: download CRC32C");
    assert_eq!(down.parts, 13, "{root}: 1 MiB download parts");
    assert!(
        down.peak_buffered <= 4 << 20,
        "{root}: download buffered {} > 4 parts",
        down.peak_buffered
    );
    // Copy within the store.
    let copy = format!("{p}/copy");
    store
        .copy_from(store, &key, &copy, &opts, None)
        .await
        .unwrap_or_else(|e| panic!("{root}: copy: {e}"));
    assert_eq!(
        store.head(&copy).await.expect("head copy").size,
        body.len() as u64,
        "{root}: copy size"
    );
}

/// The parallel download engine writes the object bit-exact.
pub async fn download_to_file(store: &Store, p: &str) {
    let root = store.root();
    let key = format!("{p}/obj");
    let body = data::bytes(9, (3 << 20) + 17);
    store
        .put(&key, Bytes::from(body.clone()))
        .await
        .expect("put");
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("out.bin");
    let rep = store
        .download_to_file(&key, &dest, &small_parts(), None)
        .await
        .unwrap_or_else(|e| panic!("{root}: download_to_file: {e}"));
    assert_eq!(
        std::fs::read(&dest).expect("read"),
        body,
        "{root}: file content"
    );
    assert_eq!(rep.crc32c, crc32c::crc32c(&body));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).expect("ls").collect();
    assert_eq!(leftovers.len(), 1, "{root}: temp files left behind");
}

/// Conditional create: eight racing creates of one key, one winner where the store enforces it (`expect`).
pub async fn conditional_create(store: &Store, p: &str, expect: Expect) {
    let root = store.root();
    let key = format!("{p}/marker");
    let first = store
        .put_if_absent(&key, Bytes::from_static(b"one"))
        .await
        .unwrap_or_else(|e| panic!("{root}: create: {e}"));
    assert_eq!(first, CreateOutcome::Created, "{root}: first create");
    let second = store
        .put_if_absent(&key, Bytes::from_static(b"two"))
        .await
        .unwrap_or_else(|e| panic!("{root}: second create: {e}"));
    let now = store.get(&key).await.expect("get marker");
    match expect.conditional_create {
        ConditionalCreate::Enforced => {
            assert_eq!(
                second,
                CreateOutcome::AlreadyExists,
                "{root}: second create must be refused"
            );
            assert_eq!(
                now,
                Bytes::from_static(b"one"),
                "{root}: refused create must not overwrite"
            );
            // Racing creates: exactly one wins (leases depend on it).
            for round in 0..5 {
                let race = format!("{p}/race-{round}");
                let outcomes = futures::future::join_all((0..8).map(|i| {
                    let race = race.clone();
                    async move { store.put_if_absent(&race, Bytes::from(vec![i as u8])).await }
                }))
                .await;
                let won = outcomes
                    .iter()
                    .filter(|o| matches!(o, Ok(CreateOutcome::Created)))
                    .count();
                assert_eq!(won, 1, "{root}: {won} of 8 racing creates succeeded");
            }
        }
        ConditionalCreate::Ignored => {
            assert_eq!(
                second,
                CreateOutcome::Created,
                "{root}: store was expected to ignore the condition"
            );
        }
        ConditionalCreate::Unsupported => {}
    }
    let caps = store
        .probe()
        .await
        .unwrap_or_else(|e| panic!("{root}: probe: {e}"));
    assert_eq!(
        caps.conditional_create, expect.conditional_create,
        "{root}: capability probe"
    );
    let probes = store
        .list(strata_store::capability::PROBE_PREFIX)
        .await
        .expect("list probes");
    assert!(
        probes.is_empty(),
        "{root}: probe objects left behind: {probes:?}"
    );
}

/// A missing object is `NotFound` for every operation, with its URL in the message.
pub async fn missing_objects(store: &Store, p: &str) {
    let root = store.root();
    let key = format!("{p}/never-written");
    let err = store.head(&key).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "{root}: head missing: {err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("never-written"),
        "{root}: error must name the object: {text}"
    );
    let err = store.get_range(&key, 0..10, None).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::NotFound,
        "{root}: get missing: {err}"
    );
}

/// A multipart upload abandoned mid-way (its future forgotten, as if the process died after
/// the first part) is listed by `pending_uploads` under its prefix, with its start time, and
/// `abort_upload` removes it. Backends that cannot list (not S3) answer `None`.
pub async fn pending_uploads(store: &Store, p: &str) {
    let root = store.root();
    let listed = store
        .pending_uploads(p)
        .await
        .unwrap_or_else(|e| panic!("{root}: list pending uploads: {e}"));
    let Some(before) = listed else {
        return;
    };
    assert!(
        before.is_empty(),
        "{root}: pending before the test: {before:?}"
    );
    let key = format!("{p}/abandoned");
    let started = chrono::Utc::now() - chrono::Duration::seconds(5);
    // Started with one part uploaded and never completed: what a kill -9 leaves.
    let mp = store.multipart_store().expect("S3 has multipart uploads");
    let path = object_store::path::Path::from(key.as_str());
    let id = mp
        .create_multipart(&path)
        .await
        .unwrap_or_else(|e| panic!("{root}: create multipart: {e}"));
    mp.put_part(&path, &id, 0, Bytes::from(data::bytes(9, 5 << 20)).into())
        .await
        .unwrap_or_else(|e| panic!("{root}: upload part: {e}"));
    let list = store
        .pending_uploads(p)
        .await
        .unwrap_or_else(|e| panic!("{root}: list pending uploads: {e}"))
        .expect("listed before");
    assert_eq!(list.len(), 1, "{root}: pending uploads: {list:?}");
    assert_eq!(list[0].key, key, "{root}: pending upload key");
    if let Some(t) = list[0].initiated {
        assert!(
            t >= started,
            "{root}: initiated {t} before the test started"
        );
    }
    let other = store
        .pending_uploads(&format!("{p}-elsewhere"))
        .await
        .unwrap_or_else(|e| panic!("{root}: list: {e}"))
        .expect("listed before");
    assert!(other.is_empty(), "{root}: prefix filter: {other:?}");
    store
        .abort_upload(&key, &list[0].upload_id)
        .await
        .unwrap_or_else(|e| panic!("{root}: abort: {e}"));
    let after = store
        .pending_uploads(p)
        .await
        .unwrap_or_else(|e| panic!("{root}: list: {e}"))
        .expect("listed before");
    assert!(
        after.is_empty(),
        "{root}: still pending after abort: {after:?}"
    );
    assert!(
        store.head(&key).await.is_err(),
        "{root}: an aborted upload must not create {key}"
    );
}
