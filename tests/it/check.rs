//! Build checks against BuildKit's golden output: every `fixtures/conformance/dockerfile-check`
//! case runs through `frontend::dockerfile::check` and its findings, reduced the way
//! `conformance.py` reduces them, must equal `expected.stdout`.

use std::path::Path;

use bake::diag::SourceFile;
use bake::frontend::dockerfile::{ConvertOptions, check};
use bake::platform::Platform;
use serde_json::{Value, json};

/// The keys `conformance.py` keeps from each warning.
const KEEP: &[&str] = &["ruleName", "description", "url", "detail", "location"];

fn reduce(warnings: &Value) -> Value {
    let list = warnings.as_array().cloned().unwrap_or_default();
    Value::Array(
        list.iter()
            .map(|w| {
                let object = KEEP
                    .iter()
                    .map(|k| ((*k).to_owned(), w.get(*k).cloned().unwrap_or(Value::Null)))
                    .collect();
                Value::Object(object)
            })
            .collect(),
    )
}

fn run_case(dir: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(dir.join("Dockerfile")).map_err(|e| e.to_string())?;
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.stdout")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let hcl = std::fs::read_to_string(dir.join("docker-bake.hcl")).unwrap_or_default();
    assert!(
        !hcl.contains("args") && !hcl.contains("target ="),
        "case {} needs args/target support in this test",
        dir.display()
    );
    let options = ConvertOptions {
        build_platform: Some(Platform::host()),
        ..ConvertOptions::default()
    };
    let file = SourceFile::new("Dockerfile", text);
    let report = check(&file, &options).map_err(|e| bake::diag::render(&e))?;
    let ours = reduce(&serde_json::to_value(&report.warnings).map_err(|e| e.to_string())?);
    let targets = expected["target"].as_object().cloned().unwrap_or_default();
    for (name, target) in targets {
        let theirs = reduce(&target["check"]["warnings"]);
        if ours != theirs {
            return Err(format!(
                "target `{name}`:\n  expected {}\n  actual   {}",
                json!(theirs),
                json!(ours)
            ));
        }
    }
    Ok(())
}

#[test]
fn dockerfile_check_matches_buildkit_golden_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance/dockerfile-check");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .expect("fixtures exist")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 14);
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_case(case).err().map(|e| {
                format!(
                    "{}: {e}",
                    case.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
