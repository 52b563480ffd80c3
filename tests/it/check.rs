//! Build checks against BuildKit's golden output: every `fixtures/conformance/dockerfile-check`
//! case runs through `frontend::dockerfile::check` and its findings, reduced the way
//! `conformance.py` reduces them, must equal `expected.stdout`.

use std::path::Path;

use bake::diag::SourceFile;
use bake::frontend::dockerfile::{ConvertOptions, check, outline, targets};
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

fn linux_options() -> ConvertOptions {
    let linux: Platform = "linux/amd64".parse().expect("valid platform");
    ConvertOptions {
        build_platform: Some(linux.clone()),
        target_platform: Some(linux),
        ..ConvertOptions::default()
    }
}

fn rules(report: &bake::frontend::dockerfile::CheckReport) -> Vec<&str> {
    report
        .warnings
        .iter()
        .map(|w| w.rule_name.as_str())
        .collect()
}

#[test]
fn check_error_directive_makes_warnings_fail() {
    let file = SourceFile::new(
        "Dockerfile",
        "# check=error=true\nFROM scratch\nMAINTAINER me\n",
    );
    let report = check(&file, &linux_options()).expect("parses");
    assert_eq!(rules(&report), ["MaintainerDeprecated"]);
    assert!(report.failed());
}

#[test]
fn check_skip_all_reports_nothing_and_experimental_rules_are_opt_in() {
    let text = "# check=skip=all\nFROM scratch AS Build\nworkdir rel\n";
    let report = check(&SourceFile::new("Dockerfile", text), &linux_options()).expect("parses");
    assert!(report.warnings.is_empty());
    let text = "# check=experimental=InvalidDefinitionDescription\n# not the name\nFROM scratch AS build\n";
    let report = check(&SourceFile::new("Dockerfile", text), &linux_options()).expect("parses");
    assert_eq!(rules(&report), ["InvalidDefinitionDescription"]);
}

#[test]
fn check_reports_stage_level_rules() {
    let text = "FROM --platform=linux/arm64 alpine AS context\nFROM --platform=$TARGETPLATFORM alpine AS context\n";
    let report = check(&SourceFile::new("Dockerfile", text), &linux_options()).expect("parses");
    assert_eq!(
        rules(&report),
        [
            "ReservedStageName",
            "ReservedStageName",
            "DuplicateStageName",
            "FromPlatformFlagConstDisallowed",
            "RedundantTargetPlatform",
        ]
    );
}

#[test]
fn check_reports_conversion_errors_inside_the_report() {
    let text = "FROM alpine\nCOPY --from=9 /a /a\n";
    let report = check(&SourceFile::new("Dockerfile", text), &linux_options()).expect("parses");
    assert!(report.error.is_some());
    assert!(report.failed());
}

#[test]
fn targets_lists_stages_with_descriptions_and_default() {
    let text =
        "# build compiles the app\nFROM golang AS build\n\nFROM --platform=$BUILDPLATFORM alpine\n";
    let list = targets(&SourceFile::new("Dockerfile", text)).expect("parses");
    let json = serde_json::to_value(&list).expect("serialises");
    assert_eq!(
        json,
        json!({"targets": [
            {"name": "build", "description": "compiles the app", "base": "golang",
             "location": {"ranges": [{"start": {"line": 2}, "end": {"line": 2}}]}},
            {"default": true, "base": "alpine", "platform": "$BUILDPLATFORM",
             "location": {"ranges": [{"start": {"line": 4}, "end": {"line": 4}}]}}
        ]})
    );
}

#[test]
fn outline_lists_used_args_secrets_and_ssh() {
    let text = "ARG BASE=alpine\nARG UNUSED=1\nFROM $BASE AS build\n# VERSION the release\nARG VERSION=1.0\nRUN --mount=type=secret,id=token --mount=type=ssh,required echo\n\nFROM build\n";
    let mut options = linux_options();
    options
        .build_args
        .insert("VERSION".to_owned(), "2.0".to_owned());
    let outline = outline(&SourceFile::new("Dockerfile", text), &options).expect("parses");
    let names: Vec<(&str, &str)> = outline
        .args
        .iter()
        .map(|a| (a.name.as_str(), a.value.as_str()))
        .collect();
    assert_eq!(names, [("BASE", "alpine"), ("VERSION", "2.0")]);
    assert_eq!(outline.args[1].description, "the release");
    assert_eq!(outline.secrets[0].name, "token");
    assert!(outline.ssh[0].required);
}
