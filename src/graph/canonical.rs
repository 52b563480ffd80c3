//! The canonical encoding that vertex digests are computed over, written straight into a byte
//! buffer. It is byte-for-byte the compact JSON that `serde_json` makes of the same values (the
//! encoding [`ENCODING_VERSION`] 1 was defined as), without serde's per-token writer
//! calls; debug builds check every encoding against `serde_json`.

use std::cell::RefCell;

#[cfg(any(test, debug_assertions))]
use serde::Serialize;

use crate::digest::Digest;
use crate::graph::op::{
    CacheSharing, CopyAction, ExecOp, FileAction, FileOp, FileOwner, Mount, MountKind, NetworkMode,
    Op, SecurityMode, SourceOp,
};
use crate::graph::vertex::Edge;
use crate::platform::Platform;

/// Version of the canonical encoding that digests are computed over. Bump it whenever the
/// encoded form of an op changes, so old cache keys can never collide with new ones.
pub const ENCODING_VERSION: u32 = 1;

#[cfg(any(test, debug_assertions))]
#[derive(Serialize)]
struct Canonical<'a> {
    version: u32,
    op: &'a Op,
    inputs: &'a [Edge],
    platform: Option<&'a Platform>,
}

/// Computes the digest of an op with its inputs and platform.
pub fn vertex_digest(op: &Op, inputs: &[Edge], platform: Option<&Platform>) -> Digest {
    digest_of_inputs(op, inputs.iter().copied(), platform)
}

/// [`vertex_digest`] with the inputs as an iterator, so callers need not collect them.
pub(crate) fn digest_of_inputs(
    op: &Op,
    inputs: impl Iterator<Item = Edge> + Clone,
    platform: Option<&Platform>,
) -> Digest {
    thread_local! {
        // One buffer per thread, reused: encoding a vertex then allocates nothing.
        static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    BUFFER.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => digest_with(&mut buffer, op, inputs, platform),
        Err(_) => digest_with(&mut Vec::new(), op, inputs, platform),
    })
}

fn digest_with(
    buffer: &mut Vec<u8>,
    op: &Op,
    inputs: impl Iterator<Item = Edge> + Clone,
    platform: Option<&Platform>,
) -> Digest {
    buffer.clear();
    encode_vertex(buffer, ENCODING_VERSION, op, inputs.clone(), platform);
    #[cfg(debug_assertions)]
    assert_eq!(
        String::from_utf8_lossy(buffer),
        String::from_utf8_lossy(&serde_encoding(op, &inputs.collect::<Vec<_>>(), platform)),
        "the canonical encoder and serde_json disagree"
    );
    Digest::of(buffer)
}

/// The reference form of the canonical encoding: the compact `serde_json` of the vertex with
/// its proxy variables cleared. [`encode_vertex`] must produce exactly these bytes.
#[cfg(any(test, debug_assertions))]
pub(crate) fn serde_encoding(op: &Op, inputs: &[Edge], platform: Option<&Platform>) -> Vec<u8> {
    let without_proxy;
    let op = match op {
        Op::Exec(exec) if !exec.proxy_env.is_empty() || exec.resources.is_some() => {
            let mut exec = exec.clone();
            exec.proxy_env.clear();
            exec.resources = None;
            without_proxy = Op::Exec(exec);
            &without_proxy
        }
        _ => op,
    };
    let canonical = Canonical {
        version: ENCODING_VERSION,
        op,
        inputs,
        platform,
    };
    serde_json::to_vec(&canonical).unwrap_or_default()
}

/// Appends the canonical form of a vertex (op, inputs, platform) to `out`. Proxy variables
/// are left out, as the digest must not depend on them.
pub(crate) fn encode_vertex(
    out: &mut Vec<u8>,
    version: u32,
    op: &Op,
    inputs: impl IntoIterator<Item = Edge>,
    platform: Option<&Platform>,
) {
    out.extend_from_slice(b"{\"version\":");
    number(out, u64::from(version));
    out.extend_from_slice(b",\"op\":");
    encode_op(out, op);
    out.extend_from_slice(b",\"inputs\":[");
    for (index, edge) in inputs.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        encode_edge(out, &edge);
    }
    out.extend_from_slice(b"],\"platform\":");
    match platform {
        Some(platform) => encode_platform(out, platform),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

fn encode_edge(out: &mut Vec<u8>, edge: &Edge) {
    out.extend_from_slice(b"{\"vertex\":");
    digest(out, &edge.vertex);
    out.extend_from_slice(b",\"output\":");
    number(out, edge.output as u64);
    out.push(b'}');
}

fn encode_platform(out: &mut Vec<u8>, platform: &Platform) {
    // `Platform` serialises as its display form, `os/arch[/variant]`.
    out.push(b'"');
    string_contents(out, &platform.os);
    out.push(b'/');
    string_contents(out, &platform.architecture);
    if let Some(variant) = &platform.variant {
        out.push(b'/');
        string_contents(out, variant);
    }
    out.push(b'"');
}

fn encode_op(out: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Source(source) => encode_source(out, source),
        Op::Exec(exec) => encode_exec(out, exec),
        Op::File(file) => encode_file(out, file),
        Op::Merge(_) => out.extend_from_slice(b"{\"kind\":\"merge\"}"),
    }
}

fn encode_source(out: &mut Vec<u8>, source: &SourceOp) {
    out.extend_from_slice(b"{\"kind\":\"source\",\"identifier\":");
    string(out, &source.identifier);
    if !source.attrs.is_empty() {
        out.extend_from_slice(b",\"attrs\":{");
        for (index, (key, value)) in source.attrs.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            string(out, key);
            out.push(b':');
            string(out, value);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

fn encode_exec(out: &mut Vec<u8>, exec: &ExecOp) {
    let meta = &exec.meta;
    out.extend_from_slice(b"{\"kind\":\"exec\",\"meta\":{\"args\":");
    strings(out, &meta.args);
    out.extend_from_slice(b",\"env\":");
    strings(out, &meta.env);
    out.extend_from_slice(b",\"cwd\":");
    string(out, &meta.cwd);
    if !meta.user.is_empty() {
        out.extend_from_slice(b",\"user\":");
        string(out, &meta.user);
    }
    if !meta.extra_hosts.is_empty() {
        out.extend_from_slice(b",\"extra_hosts\":");
        strings(out, &meta.extra_hosts);
    }
    if !meta.devices.is_empty() {
        out.extend_from_slice(b",\"devices\":");
        strings(out, &meta.devices);
    }
    if meta.shm_size != 0 {
        out.extend_from_slice(b",\"shm_size\":");
        number(out, meta.shm_size);
    }
    if !meta.ulimits.is_empty() {
        out.extend_from_slice(b",\"ulimits\":[");
        for (index, limit) in meta.ulimits.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            string(out, &limit.name);
            out.extend_from_slice(b",\"soft\":");
            signed(out, limit.soft);
            out.extend_from_slice(b",\"hard\":");
            signed(out, limit.hard);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.extend_from_slice(b"},\"mounts\":[");
    for (index, mount) in exec.mounts.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        encode_mount(out, mount);
    }
    out.extend_from_slice(b"],\"network\":");
    out.extend_from_slice(match exec.network {
        NetworkMode::Sandbox => b"\"sandbox\"",
        NetworkMode::Host => b"\"host\"",
        NetworkMode::None => b"\"none\"",
    });
    out.extend_from_slice(b",\"security\":");
    out.extend_from_slice(match exec.security {
        SecurityMode::Sandbox => b"\"sandbox\"" as &[u8],
        SecurityMode::Insecure => b"\"insecure\"",
    });
    if !exec.secret_env.is_empty() {
        out.extend_from_slice(b",\"secret_env\":[");
        for (index, secret) in exec.secret_env.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"id\":");
            string(out, &secret.id);
            out.extend_from_slice(b",\"name\":");
            string(out, &secret.name);
            out.extend_from_slice(b",\"required\":");
            boolean(out, secret.required);
            out.push(b'}');
        }
        out.push(b']');
    }
    // `proxy_env` and `resources` are never part of the digest.
    out.push(b'}');
}

fn encode_mount(out: &mut Vec<u8>, mount: &Mount) {
    out.extend_from_slice(b"{\"input\":");
    optional_number(out, mount.input);
    if !mount.selector.is_empty() {
        out.extend_from_slice(b",\"selector\":");
        string(out, &mount.selector);
    }
    out.extend_from_slice(b",\"dest\":");
    string(out, &mount.dest);
    out.extend_from_slice(b",\"output\":");
    optional_number(out, mount.output);
    out.extend_from_slice(b",\"readonly\":");
    boolean(out, mount.readonly);
    out.extend_from_slice(b",\"kind\":");
    match &mount.kind {
        MountKind::Bind => out.extend_from_slice(b"{\"type\":\"bind\"}"),
        MountKind::Cache { id, sharing, owner } => {
            out.extend_from_slice(b"{\"type\":\"cache\",\"id\":");
            string(out, id);
            out.extend_from_slice(b",\"sharing\":");
            out.extend_from_slice(match sharing {
                CacheSharing::Shared => b"\"shared\"" as &[u8],
                CacheSharing::Private => b"\"private\"",
                CacheSharing::Locked => b"\"locked\"",
            });
            out.extend_from_slice(b",\"owner\":");
            encode_owner(out, owner);
            out.push(b'}');
        }
        MountKind::Tmpfs { size } => {
            out.extend_from_slice(b"{\"type\":\"tmpfs\",\"size\":");
            number(out, *size);
            out.push(b'}');
        }
        MountKind::Secret {
            id,
            owner,
            required,
        } => encode_id_owner_required(out, b"{\"type\":\"secret\",\"id\":", id, owner, *required),
        MountKind::Ssh {
            id,
            owner,
            required,
        } => encode_id_owner_required(out, b"{\"type\":\"ssh\",\"id\":", id, owner, *required),
    }
    out.push(b'}');
}

fn encode_id_owner_required(
    out: &mut Vec<u8>,
    head: &[u8],
    id: &str,
    owner: &FileOwner,
    required: bool,
) {
    out.extend_from_slice(head);
    string(out, id);
    out.extend_from_slice(b",\"owner\":");
    encode_owner(out, owner);
    out.extend_from_slice(b",\"required\":");
    boolean(out, required);
    out.push(b'}');
}

fn encode_owner(out: &mut Vec<u8>, owner: &FileOwner) {
    out.push(b'{');
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &[u8]| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(name);
    };
    if let Some(user) = &owner.user {
        key(out, b"\"user\":");
        string(out, user);
    }
    if let Some(group) = &owner.group {
        key(out, b"\"group\":");
        string(out, group);
    }
    if let Some(mode) = owner.mode {
        key(out, b"\"mode\":");
        number(out, u64::from(mode));
    }
    out.push(b'}');
}

fn encode_file(out: &mut Vec<u8>, file: &FileOp) {
    out.extend_from_slice(b"{\"kind\":\"file\",\"base\":");
    optional_number(out, file.base);
    out.extend_from_slice(b",\"actions\":[");
    for (index, action) in file.actions.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        encode_action(out, action);
    }
    out.extend_from_slice(b"]}");
}

fn encode_action(out: &mut Vec<u8>, action: &FileAction) {
    match action {
        FileAction::Mkdir {
            path,
            owner,
            make_parents,
        } => {
            out.extend_from_slice(b"{\"action\":\"mkdir\",\"path\":");
            string(out, path);
            out.extend_from_slice(b",\"owner\":");
            encode_owner(out, owner);
            out.extend_from_slice(b",\"make_parents\":");
            boolean(out, *make_parents);
        }
        FileAction::Mkfile { path, owner, data } => {
            out.extend_from_slice(b"{\"action\":\"mkfile\",\"path\":");
            string(out, path);
            out.extend_from_slice(b",\"owner\":");
            encode_owner(out, owner);
            out.extend_from_slice(b",\"data\":");
            string(out, data);
        }
        FileAction::Rm {
            path,
            allow_not_found,
        } => {
            out.extend_from_slice(b"{\"action\":\"rm\",\"path\":");
            string(out, path);
            out.extend_from_slice(b",\"allow_not_found\":");
            boolean(out, *allow_not_found);
        }
        FileAction::Copy(copy) => encode_copy(out, copy),
    }
    out.push(b'}');
}

/// Writes a copy action, tag first, without its closing brace (the caller's).
fn encode_copy(out: &mut Vec<u8>, copy: &CopyAction) {
    out.extend_from_slice(b"{\"action\":\"copy\",\"source\":");
    optional_number(out, copy.source);
    out.extend_from_slice(b",\"src\":");
    string(out, &copy.src);
    out.extend_from_slice(b",\"dest\":");
    string(out, &copy.dest);
    out.extend_from_slice(b",\"owner\":");
    encode_owner(out, &copy.owner);
    if let Some(mode) = &copy.mode_str {
        out.extend_from_slice(b",\"mode_str\":");
        string(out, mode);
    }
    let flags: [(&[u8], bool); 7] = [
        (b",\"follow_symlinks\":", copy.follow_symlinks),
        (b",\"dir_copy_contents\":", copy.dir_copy_contents),
        (b",\"create_dest_path\":", copy.create_dest_path),
        (b",\"allow_wildcard\":", copy.allow_wildcard),
        (b",\"allow_empty_wildcard\":", copy.allow_empty_wildcard),
        (b",\"attempt_unpack\":", copy.attempt_unpack),
        (b",\"parents\":", copy.parents),
    ];
    for (name, value) in flags {
        out.extend_from_slice(name);
        boolean(out, value);
    }
    if !copy.exclude_patterns.is_empty() {
        out.extend_from_slice(b",\"exclude_patterns\":");
        strings(out, &copy.exclude_patterns);
    }
}

fn boolean(out: &mut Vec<u8>, value: bool) {
    out.extend_from_slice(if value { b"true" } else { b"false" });
}

fn number(out: &mut Vec<u8>, mut value: u64) {
    let mut buffer = [0u8; 20];
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&buffer[start..]);
}

fn signed(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    number(out, value.unsigned_abs());
}

fn optional_number(out: &mut Vec<u8>, value: Option<usize>) {
    match value {
        Some(value) => number(out, value as u64),
        None => out.extend_from_slice(b"null"),
    }
}

fn digest(out: &mut Vec<u8>, digest: &Digest) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\"sha256:");
    for byte in digest.as_bytes() {
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0x0f)]);
    }
    out.push(b'"');
}

fn strings(out: &mut Vec<u8>, items: &[String]) {
    out.push(b'[');
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        string(out, item);
    }
    out.push(b']');
}

fn string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    string_contents(out, text);
    out.push(b'"');
}

/// Escapes like `serde_json`: `"` and `\`, the short forms `\b \f \n \r \t`, and `\u00XX`
/// for the other control characters; everything else (non-ASCII included) is copied.
fn string_contents(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    for (index, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..index]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0x0f)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = index + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::graph::op::{ExecMeta, ExecResources, MergeOp, SecretEnv, Ulimit};

    fn owner(user: Option<&str>, group: Option<&str>, mode: Option<u32>) -> FileOwner {
        FileOwner {
            user: user.map(Into::into),
            group: group.map(Into::into),
            mode,
        }
    }

    /// Ops covering every variant, optional field and escape the encoder knows.
    fn samples() -> Vec<Op> {
        let awkward = "q\"b\\s\u{8}\u{c}\n\r\t\u{1}\u{1f}\u{7f} é ✓";
        let mut attrs = BTreeMap::new();
        attrs.insert("include".to_owned(), awkward.to_owned());
        attrs.insert("checksum".to_owned(), "sha256:00".to_owned());
        let copy = |mode_str: Option<&str>, excludes: Vec<String>, flag: bool| CopyAction {
            source: if flag { Some(1) } else { None },
            src: "/src/*".into(),
            dest: awkward.into(),
            owner: owner(Some("1000"), None, Some(0o644)),
            mode_str: mode_str.map(Into::into),
            follow_symlinks: flag,
            dir_copy_contents: !flag,
            create_dest_path: flag,
            allow_wildcard: !flag,
            allow_empty_wildcard: flag,
            attempt_unpack: !flag,
            parents: flag,
            exclude_patterns: excludes,
        };
        let mount = |kind: MountKind, selector: &str| Mount {
            input: if selector.is_empty() { None } else { Some(2) },
            selector: selector.into(),
            dest: "/m".into(),
            output: if selector.is_empty() { Some(1) } else { None },
            readonly: selector.is_empty(),
            kind,
        };
        let exec = |full: bool| {
            Op::Exec(ExecOp {
                meta: ExecMeta {
                    args: vec!["/bin/sh".into(), "-c".into(), awkward.into()],
                    env: if full {
                        vec!["A=1".into(), "B=".into()]
                    } else {
                        Vec::new()
                    },
                    cwd: "/".into(),
                    user: if full { "app".into() } else { String::new() },
                    extra_hosts: if full {
                        vec!["h=1.2.3.4".into()]
                    } else {
                        Vec::new()
                    },
                    devices: if full {
                        vec!["/dev/fuse".into()]
                    } else {
                        Vec::new()
                    },
                    shm_size: if full { 100_663_296 } else { 0 },
                    ulimits: if full {
                        vec![
                            Ulimit {
                                name: "nofile".into(),
                                soft: 1000,
                                hard: 2000,
                            },
                            Ulimit {
                                name: "core".into(),
                                soft: -1,
                                hard: i64::MIN,
                            },
                        ]
                    } else {
                        Vec::new()
                    },
                },
                mounts: vec![
                    mount(MountKind::Bind, ""),
                    mount(
                        MountKind::Cache {
                            id: "c".into(),
                            sharing: CacheSharing::Locked,
                            owner: owner(None, Some("g"), None),
                        },
                        "sel",
                    ),
                    mount(MountKind::Tmpfs { size: u64::MAX }, ""),
                    mount(
                        MountKind::Secret {
                            id: "s".into(),
                            owner: owner(Some("u"), Some("g"), Some(0o400)),
                            required: true,
                        },
                        "",
                    ),
                    mount(
                        MountKind::Ssh {
                            id: "default".into(),
                            owner: FileOwner::default(),
                            required: false,
                        },
                        "x",
                    ),
                ],
                network: if full {
                    NetworkMode::Host
                } else {
                    NetworkMode::None
                },
                security: if full {
                    SecurityMode::Insecure
                } else {
                    SecurityMode::Sandbox
                },
                secret_env: if full {
                    vec![SecretEnv {
                        id: "tok".into(),
                        name: "TOKEN".into(),
                        required: false,
                    }]
                } else {
                    Vec::new()
                },
                proxy_env: BTreeMap::new(),
                resources: full.then(|| {
                    Box::new(ExecResources {
                        memory: Some(1),
                        ..ExecResources::default()
                    })
                }),
            })
        };
        vec![
            Op::Source(SourceOp {
                identifier: "docker-image://alpine".into(),
                attrs: BTreeMap::new(),
            }),
            Op::Source(SourceOp {
                identifier: "local://context".into(),
                attrs,
            }),
            exec(true),
            exec(false),
            Op::File(FileOp {
                base: None,
                actions: vec![
                    FileAction::Mkdir {
                        path: "/a".into(),
                        owner: owner(None, None, Some(0o755)),
                        make_parents: true,
                    },
                    FileAction::Mkfile {
                        path: "/b".into(),
                        owner: FileOwner::default(),
                        data: awkward.into(),
                    },
                    FileAction::Rm {
                        path: "/c".into(),
                        allow_not_found: false,
                    },
                    FileAction::Copy(copy(Some("u+x"), vec!["*.md".into()], true)),
                    FileAction::Copy(copy(None, Vec::new(), false)),
                ],
            }),
            Op::Merge(MergeOp {}),
        ]
    }

    #[test]
    fn matches_serde_json_byte_for_byte() {
        let edges = [
            Edge {
                vertex: Digest::of(b"a"),
                output: 0,
            },
            Edge {
                vertex: Digest::of(b"b"),
                output: 12_345,
            },
        ];
        let platforms: [Option<Platform>; 3] = [
            None,
            Some("linux/amd64".parse().expect("valid platform")),
            Some("linux/arm/v7".parse().expect("valid platform")),
        ];
        for op in samples() {
            for inputs in [&edges[..0], &edges[..]] {
                for platform in &platforms {
                    let mut fast = Vec::new();
                    encode_vertex(&mut fast, 1, &op, inputs.iter().copied(), platform.as_ref());
                    let slow = serde_encoding(&op, inputs, platform.as_ref());
                    assert_eq!(
                        String::from_utf8_lossy(&fast),
                        String::from_utf8_lossy(&slow)
                    );
                }
            }
        }
    }
}
