//! Every project under `examples/bake/` must keep resolving: `bake --print` runs in place
//! and its output is snapshotted, so an example can never rot unnoticed.

use crate::support;

#[test]
fn examples_print() {
    let root = support::root().join("examples/bake");
    let mut examples: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    examples.sort();
    assert!(examples.len() >= 3, "at least three example projects");
    for example in examples {
        let name = example.file_name().unwrap().to_str().unwrap().to_owned();
        let output = support::bake(&example, &["--print".to_owned()], &[], None);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        insta::assert_snapshot!(name, String::from_utf8_lossy(&output.stdout));
    }
}

#[test]
fn examples_list_targets() {
    let example = support::root().join("examples/bake/monorepo");
    let output = support::bake(&example, &["--list=targets".to_owned()], &[], None);
    assert!(output.status.success());
    insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
}
