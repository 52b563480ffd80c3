use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn write_then_read_round_trips_under_the_digest_name() {
    let (dir, store) = store();
    let digest = store.write(b"hello").unwrap();
    assert_eq!(digest, Digest::of(b"hello"));
    assert!(
        dir.path()
            .join("content/blobs/sha256")
            .join(digest.hex())
            .is_file()
    );
    assert_eq!(store.read(&digest).unwrap(), b"hello");
    assert_eq!(store.size(&digest).unwrap(), 5);
    assert!(store.exists(&digest));
    // Idempotent.
    assert_eq!(store.write(b"hello").unwrap(), digest);
    assert_eq!(store.list().unwrap(), vec![digest]);
}

#[test]
fn digest_mismatch_is_an_error_and_leaves_nothing() {
    let (dir, store) = store();
    let wrong = Digest::of(b"other");
    let error = store.write_from(&b"hello"[..], Some(wrong)).unwrap_err();
    assert!(matches!(error, Error::DigestMismatch { expected, .. } if expected == wrong));
    let names: Vec<_> = fs::read_dir(dir.path().join("content/blobs/sha256"))
        .unwrap()
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn missing_blob_is_not_found_and_delete_is_idempotent() {
    let (_dir, store) = store();
    let digest = Digest::of(b"absent");
    assert!(matches!(store.read(&digest), Err(Error::NotFound(d)) if d == digest));
    assert!(matches!(store.size(&digest), Err(Error::NotFound(_))));
    store.delete(&digest).unwrap();
}

#[test]
fn gc_keeps_referenced_and_leased_blobs_only() {
    let (_dir, store) = store();
    let kept = store.write(b"kept").unwrap();
    let leased_lease = store.create_lease(None).unwrap();
    let leased = store
        .write_leased(&leased_lease, &b"leased"[..], None)
        .unwrap();
    let garbage = store.write(b"garbage").unwrap();
    store
        .set_reference("cache-key", r#"{"result":1}"#, &[kept])
        .unwrap();
    assert_eq!(store.gc().unwrap(), vec![garbage]);
    assert!(store.exists(&kept) && store.exists(&leased) && !store.exists(&garbage));

    let reference = store.reference("cache-key").unwrap().unwrap();
    assert_eq!(reference.record, r#"{"result":1}"#);
    assert_eq!(reference.blobs, vec![kept]);

    store.release_lease(leased_lease).unwrap();
    store.delete_reference("cache-key").unwrap();
    assert!(store.reference("cache-key").unwrap().is_none());
    let mut deleted = store.gc().unwrap();
    deleted.sort();
    let mut expected = vec![kept, leased];
    expected.sort();
    assert_eq!(deleted, expected);
}

#[test]
fn expired_leases_stop_protecting() {
    let (_dir, store) = store();
    let lease = store.create_lease(Some(0)).unwrap();
    let digest = store.write_leased(&lease, &b"short"[..], None).unwrap();
    assert_eq!(store.gc().unwrap(), vec![digest]);
}

#[test]
fn references_are_replaced_not_merged() {
    let (_dir, store) = store();
    let a = store.write(b"a").unwrap();
    let b = store.write(b"b").unwrap();
    store.set_reference("k", "one", &[a]).unwrap();
    store.set_reference("k", "two", &[b]).unwrap();
    let reference = store.reference("k").unwrap().unwrap();
    assert_eq!(
        (reference.record.as_str(), reference.blobs),
        ("two", vec![b])
    );
}
