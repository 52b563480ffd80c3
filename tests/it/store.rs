//! The content store shared by several processes and threads at once.

use std::path::Path;
use std::process::Command;
use std::thread;

use bake::content::Store;
use bake::digest::Digest;

const CHILD_ROOT: &str = "BAKE_TEST_STORE_CHILD_ROOT";
const CHILD_ID: &str = "BAKE_TEST_STORE_CHILD_ID";

/// The blobs worker `id` writes: 40 shared by every worker and 40 of its own.
fn blobs_of(id: &str) -> Vec<Vec<u8>> {
    let shared = (0..40).map(|index| format!("shared blob {index}").repeat(100).into_bytes());
    let own = (0..40).map(|index| format!("worker {id} blob {index}").repeat(100).into_bytes());
    shared.chain(own).collect()
}

fn work(root: &Path, id: &str) {
    let store = Store::open(root).unwrap();
    let lease = store.create_lease(Some(600)).unwrap();
    let mut digests = Vec::new();
    for blob in blobs_of(id) {
        let digest = store
            .write_leased(&lease, blob.as_slice(), Some(Digest::of(&blob)))
            .unwrap();
        digests.push(digest);
        // Everyone collects garbage while the others write: leased blobs must survive.
        if digests.len() % 10 == 0 {
            store.gc().unwrap();
        }
    }
    store
        .set_reference(
            &format!("result-{id}"),
            &format!("{{\"worker\":\"{id}\"}}"),
            &digests,
        )
        .unwrap();
    store.release_lease(lease).unwrap();
}

fn check(root: &Path, ids: &[&str]) {
    let store = Store::open(root).unwrap();
    assert!(store.gc().unwrap().is_empty(), "every blob is referenced");
    for id in ids {
        let reference = store.reference(&format!("result-{id}")).unwrap().unwrap();
        assert_eq!(reference.record, format!("{{\"worker\":\"{id}\"}}"));
        assert_eq!(reference.blobs.len(), 80);
        for blob in blobs_of(id) {
            assert_eq!(store.read(&Digest::of(&blob)).unwrap(), blob);
        }
    }
    assert_eq!(store.list().unwrap().len(), 40 + 40 * ids.len());
    let leftovers: Vec<_> = std::fs::read_dir(root.join("content/blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

/// Runs as a child process of `two_processes_share_one_root`; does nothing in a normal run.
#[test]
fn child_writes_blobs() {
    if let (Ok(root), Ok(id)) = (std::env::var(CHILD_ROOT), std::env::var(CHILD_ID)) {
        work(Path::new(&root), &id);
    }
}

#[test]
fn two_processes_share_one_root() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = ["a", "b"]
        .iter()
        .map(|id| {
            Command::new(&exe)
                .args(["store::child_writes_blobs", "--exact", "--test-threads=1"])
                .env(CHILD_ROOT, dir.path())
                .env(CHILD_ID, id)
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    check(dir.path(), &["a", "b"]);
}

#[test]
fn threads_with_their_own_connections_share_one_root() {
    let dir = tempfile::tempdir().unwrap();
    let ids = ["t1", "t2", "t3"];
    thread::scope(|scope| {
        for id in ids {
            let root = dir.path();
            scope.spawn(move || work(root, id));
        }
    });
    check(dir.path(), &ids);
}

#[test]
fn a_crash_before_rename_leaves_no_blob_under_a_real_name() {
    // A reader that fails midway stands in for a crash: the temp file is removed, and no
    // partial blob appears under any digest name.
    struct Failing(usize);
    impl std::io::Read for Failing {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("connection reset"));
            }
            self.0 -= 1;
            buffer[0] = b'x';
            Ok(1)
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let error = store.write_from(Failing(1000), None).unwrap_err();
    assert!(
        error.to_string().contains("failed to read blob data"),
        "{error}"
    );
    assert!(store.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("content/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
}
