//! `schema/bake-file.schema.json` must equal what the model generates; run with
//! `UPDATE_SCHEMA=1` to rewrite it.

use crate::support;

#[test]
fn bake_file_schema_is_up_to_date() {
    let path = support::root().join("schema/bake-file.schema.json");
    let generated = bake::bake::schema::bake_file_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "schema/bake-file.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test --test it schema`"
    );
}

#[test]
fn example_json_bake_files_fit_the_schema_shape() {
    // The schema must accept the JSON files we ship as fixtures: every target key is known.
    let schema: serde_json::Value =
        serde_json::from_str(&bake::bake::schema::bake_file_schema()).unwrap();
    let known = schema["$defs"]["FileTarget"]["properties"]
        .as_object()
        .unwrap();
    for case in [
        "fixtures/conformance/bake/json-file/docker-bake.json",
        "fixtures/bake/json-functions-and-variables/docker-bake.json",
    ] {
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(support::root().join(case)).unwrap())
                .unwrap();
        for (name, target) in file["target"].as_object().unwrap() {
            let bodies: Vec<&serde_json::Value> = match target {
                serde_json::Value::Array(items) => items.iter().collect(),
                other => vec![other],
            };
            for body in bodies {
                for key in body.as_object().unwrap().keys() {
                    assert!(known.contains_key(key), "{case}: target {name} key {key}");
                }
            }
        }
    }
}
