//! The JSON Schema of `docker-bake.json` files, generated with schemars so editors can
//! validate them; `schema/bake-file.schema.json` is checked against it by a test.

use std::collections::BTreeMap;

use schemars::JsonSchema;

/// A list element that is either a CSV string (`type=local,dest=out`) or an object.
#[derive(JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only its schema is used")]
enum Spec {
    Csv(String),
    Object(BTreeMap<String, String>),
}

/// A string or a number (build args accept both; numbers become strings).
#[derive(JsonSchema)]
#[serde(untagged)]
#[expect(dead_code, reason = "only its schema is used")]
enum Scalar {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// One `target` as written in a bake file.
#[derive(JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[expect(dead_code, reason = "only its schema is used")]
struct FileTarget {
    /// Shown by `--list=targets`.
    description: Option<String>,
    /// Targets whose attributes this one starts from, in order.
    inherits: Option<Vec<String>>,
    /// Exporter annotations (`KEY=VALUE`, optionally `type:` prefixed).
    annotations: Option<Vec<String>>,
    /// Attestations (`type=sbom`, `type=provenance,mode=max`).
    attest: Option<Vec<Spec>>,
    /// The build context: a directory, a Git or HTTP URL, or `cwd://path`.
    context: Option<String>,
    /// Named contexts: `docker-image://`, `oci-layout://`, a path, a URL or `target:<name>`.
    contexts: Option<BTreeMap<String, Option<String>>>,
    /// The Dockerfile, relative to the context.
    dockerfile: Option<String>,
    /// Dockerfile text used instead of `dockerfile`.
    dockerfile_inline: Option<String>,
    /// Build arguments (`null` leaves the Dockerfile default).
    args: Option<BTreeMap<String, Option<Scalar>>>,
    /// Image labels.
    labels: Option<BTreeMap<String, Option<Scalar>>>,
    /// Image names.
    tags: Option<Vec<String>>,
    /// Cache sources (`type=registry,ref=...` or a bare reference).
    cache_from: Option<Vec<Spec>>,
    /// Cache destinations.
    cache_to: Option<Vec<Spec>>,
    /// The Dockerfile stage to build.
    target: Option<String>,
    /// Secrets (`id=token,env=TOKEN`, `id=aws,src=creds`).
    secret: Option<Vec<Spec>>,
    /// SSH agents or keys (`default`, `id=path`).
    ssh: Option<Vec<Spec>>,
    /// Target platforms (`linux/amd64`).
    platforms: Option<Vec<String>>,
    /// Exporters (`type=local,dest=out`, `type=oci,dest=img.tar`, `type=image,push=true`).
    output: Option<Vec<Spec>>,
    /// Always pull base images.
    pull: Option<bool>,
    /// Build without cache.
    no_cache: Option<bool>,
    /// Network mode for RUN steps: `default`, `host` or `none`.
    network: Option<String>,
    /// Stages to rebuild without cache.
    no_cache_filter: Option<Vec<String>>,
    /// Size of `/dev/shm` for RUN steps (`128m`).
    shm_size: Option<String>,
    /// Ulimits for RUN steps (`nofile=1024:1024`).
    ulimits: Option<Vec<String>>,
    /// cgroup limits for RUN steps.
    resources: Option<BTreeMap<String, Scalar>>,
    /// Frontend method: `build`, `check`, `outline`, `targets`.
    call: Option<String>,
    /// Privileges the build needs (`network.host`, `security.insecure`).
    entitlements: Option<Vec<String>>,
    /// Extra `/etc/hosts` entries for RUN steps.
    extra_hosts: Option<BTreeMap<String, Option<String>>>,
    /// Policy evaluation options.
    policy: Option<Vec<Spec>>,
    /// Axes to fork this target over (`{"v": ["a", "b"]}`).
    matrix: Option<BTreeMap<String, Vec<serde_json::Value>>>,
    /// Name template for each matrix cell (`"app-${v}"`).
    name: Option<String>,
}

/// One `group` as written in a bake file.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only its schema is used")]
struct FileGroup {
    /// Shown by `--list=targets`.
    description: Option<String>,
    /// Member targets or groups.
    targets: Vec<String>,
}

/// One `variable` as written in a bake file.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only its schema is used")]
struct FileVariable {
    /// The value when no override is given.
    default: Option<serde_json::Value>,
    /// A type expression such as `list(string)`.
    #[serde(rename = "type")]
    type_name: Option<String>,
    /// Shown by `--list=variables`.
    description: Option<String>,
    /// Conditions the value must meet.
    validation: Option<Vec<BTreeMap<String, String>>>,
}

/// One user `function` as written in a bake file.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "only its schema is used")]
struct FileFunction {
    /// Parameter names.
    params: Vec<String>,
    /// Name bound to the list of extra arguments.
    variadic_params: Option<String>,
    /// The result template.
    result: serde_json::Value,
}

/// A `docker-bake.json` file. Other top-level keys are global values.
#[derive(JsonSchema)]
#[schemars(title = "docker-bake.json")]
#[expect(dead_code, reason = "only its schema is used")]
struct BakeFile {
    /// Targets by name.
    target: Option<BTreeMap<String, FileTarget>>,
    /// Groups by name.
    group: Option<BTreeMap<String, FileGroup>>,
    /// Variables by name.
    variable: Option<BTreeMap<String, FileVariable>>,
    /// User functions by name.
    function: Option<BTreeMap<String, FileFunction>>,
}

/// Returns the JSON Schema of bake files, pretty-printed with a final newline.
pub fn bake_file_schema() -> String {
    let schema = schemars::schema_for!(BakeFile);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use crate::bake::hcl::fields::TARGET_ATTRIBUTES;

    #[test]
    fn schema_lists_every_target_attribute() {
        let schema: serde_json::Value = serde_json::from_str(&super::bake_file_schema()).unwrap();
        let properties = schema["$defs"]["FileTarget"]["properties"]
            .as_object()
            .unwrap();
        let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
        names.sort_unstable();
        let mut expected: Vec<&str> = TARGET_ATTRIBUTES
            .iter()
            .copied()
            .chain(["matrix", "name"])
            .collect();
        expected.sort_unstable();
        assert_eq!(names, expected);
    }
}
