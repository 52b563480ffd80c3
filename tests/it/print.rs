//! `--print` and `--list` on every `fixtures/bake/<case>` (cases without a buildx golden
//! file), snapshotted.

use crate::support;

#[test]
fn print_cases() {
    insta::glob!("../../fixtures", "bake/*/cmd", |cmd| {
        let case = cmd.parent().unwrap();
        let (output, _) = support::run_fixture(cmd);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{}: {stderr}", case.display());
        insta::assert_snapshot!(String::from_utf8_lossy(&output.stdout));
    });
}

#[test]
fn stdin_file_is_read_and_sniffed() {
    let scratch = tempfile::tempdir().unwrap();
    let hcl = "target \"default\" {\n  tags = [\"from-stdin\"]\n}\n";
    let args = vec!["-f".to_owned(), "-".to_owned(), "--print".to_owned()];
    let output = support::bake(scratch.path(), &args, &[], Some(hcl));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("from-stdin"));
    let json = r#"{"target": {"default": {"tags": ["json-stdin"]}}}"#;
    let output = support::bake(scratch.path(), &args, &[], Some(json));
    assert!(String::from_utf8_lossy(&output.stdout).contains("json-stdin"));
}

/// Scripts cut `--list` tables on tabs, and insta trims trailing whitespace, so the exact
/// bytes (trailing tabs included) are checked here.
#[test]
fn list_tables_are_padded_with_tabs_like_buildx() {
    let scratch = tempfile::tempdir().unwrap();
    let hcl = "variable \"TAG\" {\n  default = \"latest\"\n  description = \"Image tag\"\n}\n\
               variable \"OPT\" {\n  default = null\n}\n\
               group \"all\" {\n  description = \"Everything\"\n  targets = [\"web\", \"migrations\"]\n}\n\
               target \"migrations\" {\n  description = \"Schema\"\n}\ntarget \"web\" {}\n";
    std::fs::write(scratch.path().join("docker-bake.hcl"), hcl).unwrap();
    let run = |list: &str| {
        let output = support::bake(scratch.path(), &[format!("--list={list}")], &[], None);
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(
        run("targets"),
        "TARGET\t\tDESCRIPTION\nall\t\tEverything (migrations, web)\nmigrations\tSchema\nweb\t\t\n"
    );
    assert_eq!(
        run("variables"),
        "VARIABLE\tTYPE\tVALUE\tDESCRIPTION\nOPT\t\t\t<null>\t\nTAG\t\t\tlatest\tImage tag\n"
    );
}

/// A chain where each target links every earlier one through `target:` contexts: walking
/// every path is exponential, so this only finishes when each linked target is resolved once.
#[test]
fn fan_in_link_chain_of_60_targets_prints() {
    let scratch = tempfile::tempdir().unwrap();
    let mut hcl = String::from("group \"default\" {\n  targets = [\"p59\"]\n}\n");
    for i in 0..60 {
        let contexts: Vec<String> = (0..i)
            .map(|j| format!("ref_p{j} = \"target:p{j}\""))
            .collect();
        hcl.push_str(&format!(
            "target \"p{i}\" {{\n  contexts = {{ {} }}\n}}\n",
            contexts.join(", ")
        ));
    }
    std::fs::write(scratch.path().join("docker-bake.hcl"), hcl).unwrap();
    let dir = scratch.path().to_owned();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(support::bake(&dir, &["--print".to_owned()], &[], None));
    });
    let output = receiver
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("`bake --print` of a 60-target fan-in chain did not finish in 2 minutes");
    assert!(output.status.success(), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let targets = printed["target"].as_object().unwrap();
    assert_eq!(targets.len(), 60);
    assert_eq!(targets["p0"]["output"][0]["type"], "cacheonly");
    assert!(targets["p59"].get("output").is_none());
}

/// buildx loads a target with attributes it does not know and drops them; bake does too,
/// with a located warning on stderr for each.
#[test]
fn unknown_target_attributes_warn_and_are_ignored() {
    let cmd = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/bake/unknown-attribute-ignored/cmd");
    let (output, scratch) = support::run_fixture(&cmd);
    assert!(output.status.success(), "{output:?}");
    let printed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let docs = printed["target"]["docs"].as_object().unwrap();
    assert!(!docs.contains_key("provenance") && !docs.contains_key("tag"));
    let stderr = String::from_utf8_lossy(&output.stderr).replace(&scratch, "[CASE]");
    insta::assert_snapshot!(stderr);
}
