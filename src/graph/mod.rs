//! The contract between front ends and the solver: ops, vertices, definitions and their
//! content digests. Layer 1: may import `digest`, `platform`, `oci` and `diag`; never a front
//! end or a back end.
//!
//! Front ends build graphs with the immutable [`State`] builder and turn the result into a
//! [`Definition`], whose vertices are listed inputs first and named by a sha256 digest over a
//! versioned canonical encoding ([`ENCODING_VERSION`]). Names and source locations live in
//! [`VertexMeta`], outside the digest.

mod canonical;
mod definition;
pub mod git;
mod op;
mod source;
mod state;
mod vertex;

pub use canonical::{ENCODING_VERSION, vertex_digest};
pub use definition::Definition;
pub use op::{
    CacheSharing, CopyAction, ExecMeta, ExecOp, ExecResources, FileAction, FileOp, FileOwner,
    MergeOp, Mount, MountKind, NetworkMode, Op, SecretEnv, SecurityMode, SourceOp, Ulimit,
};
pub use source::{FOLLOW_PATHS, LayoutSelector, Source, SourceError, parse_layout_reference};
pub use state::{Inputs, State};
pub use vertex::{Edge, SourceLocation, Vertex, VertexMeta};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    fn linux() -> Platform {
        "linux/amd64".parse().expect("valid platform")
    }

    fn touch(base: &State, path: &str) -> State {
        let mut inputs = Inputs::default();
        let base_index = inputs.add(base);
        let op = Op::File(FileOp {
            base: base_index,
            actions: vec![FileAction::Mkfile {
                path: path.into(),
                owner: FileOwner::default(),
                data: String::new(),
            }],
        });
        State::with_op(op, inputs, Some(linux()), VertexMeta::default())
    }

    #[test]
    fn digests_ignore_meta_and_depend_on_inputs() {
        let named = VertexMeta {
            name: "FROM alpine".into(),
            ..VertexMeta::default()
        };
        let a = State::image("alpine", &linux(), VertexMeta::default());
        let b = State::image("alpine", &linux(), named);
        assert_eq!(a.edge(), b.edge());
        assert_ne!(
            touch(&a, "/x").edge(),
            touch(&State::scratch(), "/x").edge()
        );
    }

    #[test]
    fn definition_lists_inputs_first_without_duplicates() {
        let base = State::image("alpine", &linux(), VertexMeta::default());
        let left = touch(&base, "/l");
        let right = touch(&base, "/r");
        let merged = State::merge(&[left, right], VertexMeta::default());
        let definition = Definition::from_state(&merged);
        assert_eq!(definition.vertices.len(), 4);
        assert!(matches!(*definition.vertices[0].op, Op::Source(_)));
        assert_eq!(definition.root, merged.edge());
    }

    #[test]
    fn proxy_env_and_resources_are_left_out_of_the_digest() {
        let exec = |proxy: &[(&str, &str)], memory: Option<i64>| {
            Op::Exec(ExecOp {
                meta: ExecMeta {
                    args: vec!["true".into()],
                    env: Vec::new(),
                    cwd: "/".into(),
                    user: String::new(),
                    extra_hosts: Vec::new(),
                    devices: Vec::new(),
                    shm_size: 0,
                    ulimits: Vec::new(),
                },
                mounts: Vec::new(),
                network: NetworkMode::Sandbox,
                security: SecurityMode::Sandbox,
                secret_env: Vec::new(),
                proxy_env: proxy
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
                resources: memory.map(|memory| {
                    Box::new(ExecResources {
                        memory: Some(memory),
                        ..ExecResources::default()
                    })
                }),
            })
        };
        let plain = vertex_digest(&exec(&[], None), &[], None);
        let proxied = vertex_digest(&exec(&[("HTTP_PROXY", "http://p:3128")], None), &[], None);
        let limited = vertex_digest(&exec(&[], Some(64 << 20)), &[], None);
        assert_eq!(plain, proxied);
        assert_eq!(plain, limited);
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let mut state = State::scratch();
        for i in 0..20_000 {
            state = touch(&state, &format!("/{i}"));
        }
        let definition = Definition::from_state(&state);
        assert_eq!(definition.vertices.len(), 20_000);
    }
}
