//! Unit tests for the Compose loader: mapping rules, interpolation, merges and errors, plus
//! the `compose-*` conformance cases.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load_with(texts: &[&str], env: &[(&str, &str)]) -> Result<Composed, Error> {
    let files: Vec<SourceFile> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| SourceFile::new(format!("compose{i}.yaml"), *t))
        .collect();
    parse(&files, &env_of(env), None)
}

fn load(text: &str) -> Composed {
    load_with(&[text], &[]).unwrap()
}

fn fail(text: &str) -> Diagnostic {
    let err = load_with(&[text], &[]).unwrap_err();
    err.diagnostics.into_iter().next().unwrap()
}

fn target_json(composed: &Composed, name: &str) -> Json {
    let target = composed.targets.iter().find(|t| t.name == name).unwrap();
    serde_json::to_value(target).unwrap()
}

fn only(text: &str) -> Json {
    let composed = load(text);
    assert_eq!(composed.targets.len(), 1);
    serde_json::to_value(&composed.targets[0]).unwrap()
}

/// Applies the caller's `dockerfile` default, as `--print` shows it.
fn printed(composed: &Composed) -> Json {
    let mut targets = serde_json::Map::new();
    for target in &composed.targets {
        let mut target = target.clone();
        target
            .dockerfile
            .get_or_insert_with(|| "Dockerfile".to_owned());
        targets.insert(target.name.clone(), serde_json::to_value(&target).unwrap());
    }
    let groups: serde_json::Map<String, Json> = composed
        .groups
        .iter()
        .map(|g| (g.name.clone(), serde_json::to_value(g).unwrap()))
        .collect();
    json!({ "group": groups, "target": targets })
}

#[test]
fn conformance_compose_basic() {
    let text = "services:\n  api:\n    build:\n      context: ./api\n      dockerfile: Dockerfile.api\n      args:\n        GO_VERSION: \"1.22\"\n      target: prod\n    image: acme/api:1.0\n  web:\n    build: ./web\n    image: acme/web\n  db:\n    image: postgres:16\n";
    let expected = json!({
      "group": { "default": { "targets": ["api", "web"] } },
      "target": {
        "api": {
          "context": "api", "dockerfile": "Dockerfile.api",
          "args": { "GO_VERSION": "1.22" }, "tags": ["acme/api:1.0"], "target": "prod"
        },
        "web": { "context": "web", "dockerfile": "Dockerfile", "tags": ["acme/web"] }
      }
    });
    assert_eq!(printed(&load(text)), expected);
}

#[test]
fn conformance_compose_args_list() {
    let text = "services:\n  app:\n    build:\n      context: .\n      args:\n        - FOO=bar\n        - EMPTY=\n      labels:\n        com.example.team: platform\n      cache_from:\n        - type=local,src=/tmp/cache\n      platforms:\n        - linux/amd64\n";
    let expected = json!({
      "group": { "default": { "targets": ["app"] } },
      "target": { "app": {
        "context": ".", "dockerfile": "Dockerfile",
        "args": { "EMPTY": "", "FOO": "bar" },
        "labels": { "com.example.team": "platform" },
        "cache-from": [ { "src": "/tmp/cache", "type": "local" } ],
        "platforms": ["linux/amd64"]
      } }
    });
    assert_eq!(printed(&load(text)), expected);
}

#[test]
fn conformance_compose_x_bake() {
    let text = "services:\n  app:\n    build:\n      context: .\n      x-bake:\n        platforms:\n          - linux/amd64\n          - linux/arm64\n        tags:\n          - acme/app:x\n        no-cache: true\n    image: acme/app\n";
    let expected = json!({
      "group": { "default": { "targets": ["app"] } },
      "target": { "app": {
        "context": ".", "dockerfile": "Dockerfile",
        "tags": ["acme/app:x"], "platforms": ["linux/amd64", "linux/arm64"], "no-cache": true
      } }
    });
    assert_eq!(printed(&load(text)), expected);
}

#[test]
fn context_defaults_and_cleaning() {
    let composed = load(
        "services:\n  a:\n    build:\n      dockerfile: x/Dockerfile\n  b:\n    build: ./sub/../web/\n  c:\n    build: https://github.com/a/b.git#main\n",
    );
    assert_eq!(
        target_json(&composed, "a"),
        json!({"context": ".", "dockerfile": "x/Dockerfile"})
    );
    assert_eq!(target_json(&composed, "b"), json!({"context": "web"}));
    assert_eq!(
        target_json(&composed, "c"),
        json!({"context": "https://github.com/a/b.git#main"})
    );
}

#[test]
fn services_without_build_are_skipped_and_group_keeps_file_order() {
    let composed =
        load("services:\n  zeta:\n    build: .\n  db:\n    image: pg\n  alpha:\n    build: .\n");
    assert_eq!(composed.groups.len(), 1);
    assert_eq!(composed.groups[0].name, "default");
    assert_eq!(composed.groups[0].targets, vec!["zeta", "alpha"]);
}

#[test]
fn service_names_are_sanitised_and_validated() {
    let composed = load("services:\n  web.app:\n    build: .\n");
    assert_eq!(composed.targets[0].name, "web_app");
    let text = "services:\n  \"bad name\":\n    build: .\n";
    let diagnostic = fail(text);
    assert_eq!(diagnostic.code, "bake::compose");
    assert!(
        diagnostic.message.contains("`bad name`"),
        "{}",
        diagnostic.message
    );
    let span = diagnostic.span.unwrap();
    assert!(text[span].contains("bad name"));
}

#[test]
fn args_map_list_numbers_and_resolution() {
    let text = "services:\n  app:\n    environment:\n      FROM_SVC: svc\n    build:\n      args:\n        N: 3\n        F: 1.5\n        B: true\n        FROM_SVC:\n        FROM_ENV:\n        MISSING:\n";
    let composed = load_with(&[text], &[("FROM_ENV", "env"), ("FROM_SVC", "lost")]).unwrap();
    assert_eq!(
        target_json(&composed, "app")["args"],
        json!({"B": "true", "F": "1.5", "FROM_ENV": "env", "FROM_SVC": "svc", "N": "3"})
    );
    let list = "services:\n  app:\n    environment:\n      - FROM_SVC=svc\n    build:\n      args:\n        - A=1=2\n        - FROM_SVC\n        - FROM_ENV\n        - MISSING\n";
    let composed = load_with(&[list], &[("FROM_ENV", "env")]).unwrap();
    assert_eq!(
        target_json(&composed, "app")["args"],
        json!({"A": "1=2", "FROM_ENV": "env", "FROM_SVC": "svc"})
    );
}

#[test]
fn labels_tags_platforms_target_network_inline() {
    let json = only(
        "services:\n  app:\n    image: ignored\n    build:\n      labels:\n        - a=1\n        - b\n      tags: [x/y:1, x/y:2]\n      platforms: [linux/arm64]\n      target: t\n      network: host\n      dockerfile_inline: FROM scratch\n",
    );
    assert_eq!(
        json,
        json!({
            "context": ".", "dockerfile-inline": "FROM scratch",
            "labels": {"a": "1", "b": ""}, "tags": ["x/y:1", "x/y:2"], "target": "t",
            "platforms": ["linux/arm64"], "network": "host"
        })
    );
}

#[test]
fn cache_entries_are_parsed() {
    let json = only(
        "services:\n  app:\n    build:\n      cache_from: [user/app:cache, type=gha]\n      cache_to: [\"type=registry,ref=user/app:cache,mode=max\"]\n",
    );
    assert_eq!(
        json["cache-from"],
        json!([{"ref": "user/app:cache", "type": "registry"}, {"type": "gha"}])
    );
    assert_eq!(
        json["cache-to"],
        json!([{"mode": "max", "ref": "user/app:cache", "type": "registry"}])
    );
    let diagnostic = fail("services:\n  app:\n    build:\n      cache_to: [\"mode=max\"]\n");
    assert!(
        diagnostic.message.contains("cache_to"),
        "{}",
        diagnostic.message
    );
}

#[test]
fn shm_size_and_ulimits() {
    let json = only(
        "services:\n  app:\n    build:\n      shm_size: 2gb\n      ulimits:\n        nproc: 65535\n        nofile:\n          soft: 20000\n          hard: 40000\n",
    );
    assert_eq!(json["shm-size"], json!("2GiB"));
    assert_eq!(
        json["ulimits"],
        json!(["nofile=20000:40000", "nproc=65535:65535"])
    );
    let json = only("services:\n  app:\n    build:\n      shm_size: 134217728\n");
    assert_eq!(json["shm-size"], json!("128MiB"));
    assert!(
        fail("services:\n  app:\n    build:\n      ulimits:\n        bogus: 1\n")
            .message
            .contains("`bogus`")
    );
    assert!(
        fail("services:\n  app:\n    build:\n      ulimits:\n        nofile: {soft: 2, hard: 1}\n")
            .message
            .contains("soft limit")
    );
    assert!(
        fail("services:\n  app:\n    build:\n      shm_size: lots\n")
            .message
            .contains("`lots`")
    );
}

#[test]
fn extra_hosts_list_and_map() {
    let json = only(
        "services:\n  app:\n    build:\n      extra_hosts:\n        - somehost:162.242.195.82\n        - other=10.0.0.1\n        - somehost=10.0.0.2\n        - v6host=[::1]\n",
    );
    assert_eq!(
        json["extra-hosts"],
        json!({"other": "10.0.0.1", "somehost": "162.242.195.82,10.0.0.2", "v6host": "::1"})
    );
    let json = only(
        "services:\n  app:\n    build:\n      extra_hosts:\n        a: 1.1.1.1\n        b: [2.2.2.2, 3.3.3.3]\n",
    );
    assert_eq!(
        json["extra-hosts"],
        json!({"a": "1.1.1.1", "b": "2.2.2.2,3.3.3.3"})
    );
    assert!(
        fail("services:\n  app:\n    build:\n      extra_hosts: [nohost]\n")
            .message
            .contains("missing IP")
    );
}

#[test]
fn ssh_sorted() {
    let json = only("services:\n  app:\n    build:\n      ssh: [zkey=/k, default]\n");
    assert_eq!(
        json["ssh"],
        json!([{"id": "default"}, {"id": "zkey", "paths": ["/k"]}])
    );
    let json = only("services:\n  app:\n    build:\n      ssh:\n        b: /b\n        a: /a\n");
    assert_eq!(
        json["ssh"],
        json!([{"id": "a", "paths": ["/a"]}, {"id": "b", "paths": ["/b"]}])
    );
}

#[test]
fn secrets_from_top_level() {
    let text = "services:\n  app:\n    build:\n      secrets:\n        - token\n        - source: aws\n          target: creds\nsecrets:\n  token:\n    environment: ENV_TOKEN\n  aws:\n    file: /root/.aws/credentials\n";
    assert_eq!(
        only(text)["secret"],
        json!([{"id": "token", "env": "ENV_TOKEN"}, {"id": "aws", "src": "/root/.aws/credentials"}])
    );
    let external = "services:\n  app:\n    build:\n      secrets: [ext]\nsecrets:\n  ext:\n    external: true\n";
    assert_eq!(fail(external).message, "unsupported external secret `ext`");
    let undefined = "services:\n  app:\n    build:\n      secrets: [nope]\n";
    assert!(
        fail(undefined)
            .message
            .contains("undefined build secret `nope`")
    );
}

#[test]
fn additional_contexts_map_and_list() {
    let json = only(
        "services:\n  app:\n    build:\n      additional_contexts:\n        base: service:base.img\n        alpine: docker-image://alpine\n",
    );
    assert_eq!(
        json["contexts"],
        json!({"alpine": "docker-image://alpine", "base": "target:base_img"})
    );
    let json = only(
        "services:\n  app:\n    build:\n      additional_contexts: [\"src=../src\", \"t=target:x\"]\n",
    );
    assert_eq!(json["contexts"], json!({"src": "../src", "t": "target:x"}));
}

#[test]
fn attestations_and_flags() {
    let json = only(
        "services:\n  app:\n    build:\n      sbom: true\n      provenance: mode=max\n      no_cache: true\n      pull: true\n",
    );
    assert_eq!(
        json["attest"],
        json!([{"type": "sbom"}, {"mode": "max", "type": "provenance"}])
    );
    assert_eq!(json["no-cache"], json!(true));
    assert_eq!(json["pull"], json!(true));
    let json = only(
        "services:\n  app:\n    build:\n      provenance: false\n      no_cache: false\n      pull: \"false\"\n",
    );
    assert_eq!(
        json,
        json!({"context": ".", "attest": [{"disabled": true, "type": "provenance"}]})
    );
}

#[test]
fn x_bake_merges_onto_build() {
    let text = "services:\n  app:\n    image: img\n    build:\n      tags: [a]\n      platforms: [linux/amd64]\n      cache_from: [type=gha]\n      additional_contexts:\n        base: ./base\n      secrets: [tok]\n      ssh: [default]\n      pull: true\n      x-bake:\n        tags: a b\n        platforms: linux/amd64 linux/arm64\n        cache-from:\n          - type=gha\n          - type=local,src=c\n        cache-to: type=inline\n        secret:\n          - id=tok,env=OTHER\n          - id=new,src=./f\n        ssh: agent=/sock\n        output: type=docker\n        pull: false\n        no-cache-filter: [s1, s1, s2]\n        contexts:\n          base: ./other\n          dep: service:dep\nsecrets:\n  tok:\n    environment: TOK\n";
    let json = only(text);
    assert_eq!(json["tags"], json!(["a", "b"]));
    assert_eq!(json["platforms"], json!(["linux/amd64", "linux/arm64"]));
    assert_eq!(
        json["cache-from"],
        json!([{"type": "gha"}, {"src": "c", "type": "local"}])
    );
    assert_eq!(json["cache-to"], json!([{"type": "inline"}]));
    assert_eq!(
        json["secret"],
        json!([{"id": "tok", "env": "OTHER"}, {"id": "new", "src": "./f"}])
    );
    assert_eq!(
        json["ssh"],
        json!([{"id": "agent", "paths": ["/sock"]}, {"id": "default"}])
    );
    assert_eq!(json["output"], json!([{"type": "docker"}]));
    assert!(json.get("pull").is_none());
    assert_eq!(json["no-cache-filter"], json!(["s1", "s2"]));
    assert_eq!(
        json["contexts"],
        json!({"base": "base", "dep": "target:dep"})
    );
}

#[test]
fn interpolation_everywhere_with_defaults() {
    let text = "services:\n  app:\n    image: ${REPO:-acme}/app:${TAG-latest}\n    build:\n      context: $CTX\n      args:\n        COST: $$5\n        NESTED: ${UNSET:-${ALSO:-deep}}\n        ALT: ${TAG:+tagged}\n        N: 3\n";
    let composed = load_with(&[text], &[("CTX", "./src"), ("TAG", "")]).unwrap();
    let json = target_json(&composed, "app");
    assert_eq!(json["context"], json!("src"));
    assert_eq!(json["tags"], json!(["acme/app:"]));
    assert_eq!(
        json["args"],
        json!({"ALT": "", "COST": "$5", "N": "3", "NESTED": "deep"})
    );
}

#[test]
fn interpolation_errors_point_at_the_value() {
    let text = "services:\n  app:\n    build:\n      context: ${NEED:?set NEED please}\n";
    let diagnostic = fail(text);
    assert_eq!(
        diagnostic.message,
        "required variable `NEED` is missing a value: set NEED please"
    );
    let span = diagnostic.span.unwrap();
    assert!(text[span].contains("NEED"));
    let invalid = fail("services:\n  app:\n    build: \"$1\"\n");
    assert!(invalid.message.starts_with("invalid interpolation format"));
    assert!(invalid.help.is_some());
}

#[test]
fn yaml_merge_keys() {
    let text = "x-common: &common\n  args:\n    GO: \"1.22\"\n    N: 3\n  target: prod\nservices:\n  a:\n    build:\n      <<: *common\n      context: a\n  b:\n    build:\n      <<: *common\n      target: dev\n";
    let composed = load(text);
    assert_eq!(
        target_json(&composed, "a"),
        json!({"context": "a", "args": {"GO": "1.22", "N": "3"}, "target": "prod"})
    );
    assert_eq!(
        target_json(&composed, "b"),
        json!({"context": ".", "args": {"GO": "1.22", "N": "3"}, "target": "dev"})
    );
}

#[test]
fn several_files_merge_in_order() {
    let base = "services:\n  app:\n    image: base\n    build:\n      context: .\n      args:\n        A: \"1\"\n        B: \"1\"\n      tags: [one]\n      cache_from: [type=gha]\n  other:\n    build: ./other\n";
    let over = "services:\n  app:\n    build:\n      args: [B=2, C=3]\n      tags: [two]\n      cache_from: [type=gha, \"type=local,src=x\"]\n      target: final\n  more:\n    build: ./more\n  other:\n    build:\n      dockerfile: Other.Dockerfile\n";
    let composed = load_with(&[base, over], &[]).unwrap();
    assert_eq!(composed.groups[0].targets, vec!["app", "other", "more"]);
    let app = target_json(&composed, "app");
    assert_eq!(app["args"], json!({"A": "1", "B": "2", "C": "3"}));
    assert_eq!(app["tags"], json!(["two"]));
    assert_eq!(app["target"], json!("final"));
    assert_eq!(
        app["cache-from"],
        json!([{"type": "gha"}, {"src": "x", "type": "local"}])
    );
    assert_eq!(
        target_json(&composed, "other"),
        json!({"context": "other", "dockerfile": "Other.Dockerfile"})
    );
}

#[test]
fn empty_and_malformed_files() {
    let empty = load_with(&[""], &[]).unwrap_err();
    assert_eq!(empty.diagnostics[0].message, "empty compose file");
    let none = load_with(&["version: \"3\"\n"], &[]).unwrap_err();
    assert_eq!(none.diagnostics[0].message, "empty compose file");
    assert!(load_with(&[], &[]).is_err());
    let composed = load("services: {}\n");
    assert!(composed.targets.is_empty() && composed.groups.is_empty());

    let bad = fail("services:\n  app:\n    build: [\n");
    assert_eq!(bad.code, "bake::compose");
    assert!(bad.message.starts_with("invalid compose file"));
    assert!(bad.span.is_some());
    assert!(!bad.message.contains('\n'), "{}", bad.message);
    assert!(fail("- a\n").message.contains("mapping"));
}

#[test]
fn wrong_types_are_reported_at_the_value() {
    let text = "services:\n  app:\n    build:\n      tags: notalist\n";
    let diagnostic = fail(text);
    assert_eq!(diagnostic.message, "`tags` must be a list, not a string");
    assert!(text[diagnostic.span.unwrap()].contains("notalist"));
    assert!(
        fail("services:\n  app:\n    build:\n      args: 5\n")
            .message
            .contains("`args` must be a mapping or a list")
    );
    assert!(
        fail("services:\n  app:\n    build:\n      pull: maybe\n")
            .message
            .contains("`pull` must be a boolean")
    );
    assert!(
        fail("services:\n  app:\n    build: 3\n")
            .message
            .contains("`build` must be a string or a mapping")
    );
}

#[test]
fn sniffing() {
    assert!(looks_like_compose("services:\n  a:\n    image: x\n"));
    assert!(!looks_like_compose("target \"a\" {}\n"));
    assert!(!looks_like_compose("{\"target\": {}}"));
    assert!(!looks_like_compose("- services\n"));
}

#[test]
fn dotenv_adds_missing_keys_only() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "TAG=fromfile\nREPO=\"file/repo\"\n",
    )
    .unwrap();
    let file = SourceFile::new(
        "compose.yaml",
        "services:\n  app:\n    image: ${REPO}:${TAG}\n    build: .\n",
    );
    let env = env_of(&[("TAG", "fromenv")]);
    let composed = parse(&[file], &env, Some(dir.path())).unwrap();
    assert_eq!(
        target_json(&composed, "app")["tags"],
        json!(["file/repo:fromenv"])
    );
    std::fs::write(dir.path().join(".env"), "BAD KEY=1\n").unwrap();
    let file = SourceFile::new("compose.yaml", "services: {}\n");
    assert!(parse(&[file], &env, Some(dir.path())).is_err());
}

#[test]
fn short_and_long_build_forms_merge() {
    let base = "services:\n  app:\n    build:\n      context: ./old\n      dockerfile: D\n";
    let over = "services:\n  app:\n    build: ./new\n";
    let composed = load_with(&[base, over], &[]).unwrap();
    assert_eq!(
        target_json(&composed, "app"),
        json!({"context": "new", "dockerfile": "D"})
    );
    let composed = load_with(&[over, base], &[]).unwrap();
    assert_eq!(
        target_json(&composed, "app"),
        json!({"context": "old", "dockerfile": "D"})
    );
}

#[test]
fn errors_in_a_later_file_point_at_that_file() {
    let base = "services:\n  app:\n    build: .\n";
    let over = "services:\n  app:\n    build:\n      platforms: linux/amd64\n";
    let err = load_with(&[base, over], &[]).unwrap_err();
    let diagnostic = &err.diagnostics[0];
    assert_eq!(diagnostic.file_name(), Some("compose1.yaml"));
    assert!(over[diagnostic.span.clone().unwrap()].contains("linux/amd64"));
}

/// A Compose file the way real projects write one: a few `x-` anchors reused by many services.
fn many_aliases(anchors: usize, aliases: usize) -> String {
    let mut text = String::new();
    for anchor in 0..anchors {
        text.push_str(&format!(
            "x-common{anchor}: &common{anchor}\n  ARG{anchor}: \"{anchor}\"\n"
        ));
    }
    text.push_str("services:\n");
    for service in 0..aliases {
        let anchor = service % anchors;
        text.push_str(&format!(
            "  svc{service}:\n    build:\n      context: .\n      args: *common{anchor}\n"
        ));
    }
    text
}

#[test]
fn many_aliases_to_few_anchors_parse() {
    let composed = load(&many_aliases(10, 150));
    assert_eq!(composed.targets.len(), 150);
    assert_eq!(
        target_json(&composed, "svc149")["args"],
        json!({"ARG9": "9"})
    );
}

#[test]
fn alias_bomb_is_refused() {
    let mut text =
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
            .to_owned();
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let (previous, name) = (pair[0], pair[1]);
        let refs = vec![format!("*{previous}"); 9].join(",");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    text.push_str("services:\n  app:\n    build: .\n    x-bomb: *i\n");
    let diagnostic = fail(&text);
    assert!(
        diagnostic.message.starts_with("invalid compose file: "),
        "{}",
        diagnostic.message
    );
    assert!(
        diagnostic.message.contains("alias"),
        "{}",
        diagnostic.message
    );
}

/// Loads `compose.yaml` from a directory laid out by `files` (`(path, text)` pairs).
fn load_dir(files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Composed, Error> {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let text = std::fs::read_to_string(dir.path().join("compose.yaml")).unwrap();
    let file = SourceFile::new("compose.yaml", text);
    parse(&[file], &env_of(env), Some(dir.path()))
}

#[test]
fn paths_are_cleaned_as_compose_go_resolves_them() {
    let text = "services:\n  app:\n    build:\n      context: ./other/\n      additional_contexts:\n        - assets=./assets\n        - img=docker-image://alpine\n        - dep=service:dep\n      secrets: [token, abs]\nsecrets:\n  token:\n    file: ./secret.txt\n  abs:\n    file: /run/secret\n";
    let json = only(text);
    assert_eq!(json["context"], json!("other"));
    assert_eq!(
        json["contexts"],
        json!({"assets": "assets", "img": "docker-image://alpine", "dep": "target:dep"})
    );
    assert_eq!(
        json["secret"],
        json!([{"id": "token", "src": "secret.txt"}, {"id": "abs", "src": "/run/secret"}])
    );
}

#[test]
fn extends_in_the_same_file_inherits_the_build_section() {
    let text = "services:\n  base:\n    build:\n      context: ./app\n      args:\n        A: \"1\"\n        B: base\n      target: prod\n  web:\n    extends: base\n    build:\n      args:\n        B: web\n  deep:\n    extends:\n      service: web\n    image: deep\n";
    let composed = load(text);
    let expected = json!({"context": "app", "args": {"A": "1", "B": "web"}, "target": "prod"});
    assert_eq!(target_json(&composed, "web"), expected);
    assert_eq!(
        target_json(&composed, "deep")["args"],
        json!({"A": "1", "B": "web"})
    );
    assert_eq!(target_json(&composed, "deep")["tags"], json!(["deep"]));
}

#[test]
fn extends_from_another_file_keeps_its_paths_relative_to_it() {
    let composed = load_dir(
        &[
            (
                "compose.yaml",
                "services:\n  worker:\n    extends:\n      file: shared/base.yaml\n      service: builder\n    build:\n      args:\n        MODE: worker\n",
            ),
            (
                "shared/base.yaml",
                "services:\n  builder:\n    build:\n      context: ./src\n      args:\n        MODE: base\n        LANG: ${LANG_NAME}\n",
            ),
        ],
        &[("LANG_NAME", "rust")],
    )
    .unwrap();
    assert_eq!(
        target_json(&composed, "worker"),
        json!({"context": "shared/src", "args": {"MODE": "worker", "LANG": "rust"}})
    );
}

#[test]
fn extends_errors() {
    let err = fail("services:\n  a:\n    extends: missing\n    build: .\n");
    assert!(
        err.message.contains("service `missing` not found"),
        "{}",
        err.message
    );
    let err = fail("services:\n  a:\n    extends: b\n    build: .\n  b:\n    extends: a\n");
    assert!(
        err.message.starts_with("circular `extends`"),
        "{}",
        err.message
    );
    let err = load_dir(
        &[(
            "compose.yaml",
            "services:\n  a:\n    extends:\n      file: nope.yaml\n      service: b\n",
        )],
        &[],
    )
    .unwrap_err();
    assert!(
        err.diagnostics[0]
            .message
            .contains("cannot read `nope.yaml`")
    );
}

#[test]
fn include_imports_services_relative_to_their_directory() {
    let composed = load_dir(
        &[
            (
                "compose.yaml",
                "include:\n  - path: sub/compose.yaml\nservices:\n  app:\n    build: .\n",
            ),
            (
                "sub/compose.yaml",
                "services:\n  lib:\n    build:\n      context: ./lib\n      args:\n        G: ${GREETING}\n",
            ),
            ("sub/.env", "GREETING=hello\n"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        target_json(&composed, "lib"),
        json!({"context": "sub/lib", "args": {"G": "hello"}})
    );
    assert_eq!(composed.groups[0].targets, ["app", "lib"]);
}

#[test]
fn include_conflicts_and_cycles_are_errors() {
    let err = load_dir(
        &[
            (
                "compose.yaml",
                "include: [other.yaml]\nservices:\n  app:\n    build: .\n",
            ),
            ("other.yaml", "services:\n  app:\n    build: ./x\n"),
        ],
        &[],
    )
    .unwrap_err();
    let message = &err.diagnostics[0].message;
    assert!(
        message.contains("conflicts with imported resource"),
        "{message}"
    );
    let err = load_dir(
        &[
            ("compose.yaml", "include: [a.yaml]\nservices: {}\n"),
            ("a.yaml", "include: [compose.yaml]\nservices: {}\n"),
        ],
        &[],
    )
    .unwrap_err();
    let message = &err.diagnostics[0].message;
    assert!(message.starts_with("include cycle"), "{message}");
}

#[test]
fn env_file_values_resolve_args_and_environment_wins() {
    let compose = "services:\n  app:\n    build:\n      context: .\n      args: [A, B, C]\n    env_file:\n      - one.env\n      - path: two.env\n      - path: missing.env\n        required: false\n    environment:\n      B: from-environment\n";
    let composed = load_dir(
        &[
            ("compose.yaml", compose),
            ("one.env", "A=one\nB=one\nC=${A}-c\n"),
            ("two.env", "A=two\n"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        target_json(&composed, "app")["args"],
        json!({"A": "two", "B": "from-environment", "C": "one-c"})
    );
}

#[test]
fn missing_required_env_file_is_an_error() {
    let compose = "services:\n  db:\n    image: pg\n    env_file: db.env\n";
    let err = load_dir(&[("compose.yaml", compose)], &[]).unwrap_err();
    assert_eq!(err.diagnostics[0].message, "env file `db.env` not found");
}

#[test]
fn services_with_profiles_are_all_targets() {
    // Compat: buildx loads Compose files with every profile enabled (`Profiles: ["*"]`).
    let text =
        "services:\n  app:\n    build: .\n  debug:\n    profiles: [debug]\n    build: ./debug\n";
    let composed = load_with(&[text], &[("COMPOSE_PROFILES", "other")]).unwrap();
    assert_eq!(composed.groups[0].targets, ["app", "debug"]);
}
