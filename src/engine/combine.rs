//! One definition for every target of a bake run, so the solver sees all of them at once:
//! local sources get names that tell contexts apart, and each `target://name` source is
//! replaced by the linked target's own graph. Part of `engine`.
//!
//! Why: the front end names the main context `local://context` in every target, so two
//! targets with different context directories would share a vertex digest. Renaming by
//! directory keeps distinct contexts distinct while targets that read the same directory keep
//! sharing every vertex they have in common, which the solver then runs once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::digest::Digest;
use crate::graph::{Definition, Edge, Op, Source, Vertex, vertex_digest};

/// What a vertex of an added definition became in the combined one.
#[derive(Debug, Clone, Copy)]
enum Mapped {
    /// The same vertex under a (possibly) new digest.
    Vertex(Digest),
    /// A `target://` source, replaced by the linked target's result (`None`: empty).
    Edge(Option<Edge>),
}

/// Builds the combined definition target by target.
#[derive(Debug, Default)]
pub(super) struct Combiner {
    vertices: Vec<Vertex>,
    index: HashMap<Digest, usize>,
    /// The target whose graph is being added, when several build: step names carry it.
    prefix: Option<String>,
}

/// The local directory a `local://` name stands for, seen from one target.
#[derive(Debug, Clone)]
pub(super) struct LocalName {
    /// The name the front end used (`context` or a named context).
    pub(super) name: String,
    /// The directory.
    pub(super) dir: PathBuf,
    /// The Dockerfile whose `<Dockerfile>.dockerignore` applies, if that file exists.
    pub(super) ignore_for: Option<PathBuf>,
}

impl LocalName {
    /// A name unique to the directory and its ignore rules, so equal contexts share vertices.
    pub(super) fn unique(&self) -> String {
        let dir = self.dir.to_string_lossy();
        let ignore = self
            .ignore_for
            .as_deref()
            .map(Path::to_string_lossy)
            .unwrap_or_default();
        let digest = Digest::of_parts([dir.as_bytes(), b"\0", ignore.as_bytes()]);
        format!("{}-{}", self.name, &digest.hex()[..16])
    }
}

impl Combiner {
    /// Adds `definition`, renaming `local://<name>` sources by `locals` and replacing each
    /// `target://<name>` source with `links(name)`; returns the root in the combined graph.
    /// `no_cache` marks every vertex of this definition to run again.
    pub(super) fn add(
        &mut self,
        definition: &Definition,
        locals: &[LocalName],
        links: &dyn Fn(&str) -> Option<Option<Edge>>,
        no_cache: bool,
    ) -> Result<Option<Edge>, String> {
        let by_digest: HashMap<&Digest, &Vertex> =
            definition.vertices.iter().map(|v| (&v.digest, v)).collect();
        let mut mapped: HashMap<Digest, Mapped> = HashMap::new();
        let read = read_paths(definition, &by_digest);
        for vertex in topological(definition, &by_digest)? {
            let source = match vertex.op.as_ref() {
                Op::Source(op) => Some(Source::parse(op).map_err(|e| e.to_string())?),
                _ => None,
            };
            let op = match source {
                Some(Source::Target { name }) => {
                    let edge = links(&name).ok_or_else(|| {
                        format!("the linked target `{name}` is not part of the build")
                    })?;
                    mapped.insert(vertex.digest, Mapped::Edge(edge));
                    continue;
                }
                Some(Source::Local { name, follow_paths }) => {
                    match locals.iter().find(|l| l.name == name) {
                        Some(local) => {
                            let follow_paths = match read.get(&vertex.digest) {
                                Some(Some(paths)) => Some(paths.iter().cloned().collect()),
                                _ => follow_paths,
                            };
                            Arc::new(Op::Source(
                                Source::Local {
                                    name: local.unique(),
                                    follow_paths,
                                }
                                .to_op(),
                            ))
                        }
                        None => vertex.op.clone(),
                    }
                }
                _ => vertex.op.clone(),
            };
            let mut inputs = Vec::with_capacity(vertex.inputs.len());
            for edge in &vertex.inputs {
                inputs.push(match mapped.get(&edge.vertex) {
                    Some(Mapped::Vertex(digest)) => Edge {
                        vertex: *digest,
                        output: edge.output,
                    },
                    Some(Mapped::Edge(Some(linked))) => *linked,
                    Some(Mapped::Edge(None)) => self.scratch(vertex),
                    None => return Err(format!("edge to unknown vertex {}", edge.vertex)),
                });
            }
            let digest = vertex_digest(&op, &inputs, vertex.platform.as_ref());
            let mut meta = vertex.meta.clone();
            meta.ignore_cache |= no_cache;
            if let Some(target) = &self.prefix {
                meta.name = prefixed(target, &meta.name);
            }
            self.insert(Vertex {
                digest,
                op,
                inputs,
                platform: vertex.platform.clone(),
                meta,
            });
            mapped.insert(vertex.digest, Mapped::Vertex(digest));
        }
        Ok(match &definition.root {
            None => None,
            Some(root) => match mapped.get(&root.vertex) {
                Some(Mapped::Vertex(digest)) => Some(Edge {
                    vertex: *digest,
                    output: root.output,
                }),
                Some(Mapped::Edge(edge)) => *edge,
                None => return Err(format!("root names unknown vertex {}", root.vertex)),
            },
        })
    }

    /// An empty root filesystem, for an edge to a linked target that built nothing.
    fn scratch(&mut self, user: &Vertex) -> Edge {
        let op = Arc::new(Op::Source(Source::Scratch.to_op()));
        let digest = vertex_digest(&op, &[], user.platform.as_ref());
        self.insert(Vertex {
            digest,
            op,
            inputs: Vec::new(),
            platform: user.platform.clone(),
            meta: crate::graph::VertexMeta {
                name: "scratch".to_owned(),
                ..Default::default()
            },
        });
        Edge {
            vertex: digest,
            output: 0,
        }
    }

    /// Names the target the next added graphs belong to (`None`: one target builds), so a
    /// step's name says which target it is for.
    pub(super) fn set_target(&mut self, target: Option<&str>) {
        self.prefix = target.map(str::to_owned);
    }

    fn insert(&mut self, vertex: Vertex) {
        match self.index.get(&vertex.digest) {
            Some(&at) => self.vertices[at].meta.ignore_cache |= vertex.meta.ignore_cache,
            None => {
                self.index.insert(vertex.digest, self.vertices.len());
                self.vertices.push(vertex);
            }
        }
    }

    /// The combined definition (its own root is unset: every target brings its own).
    pub(super) fn finish(self) -> Definition {
        Definition {
            version: crate::graph::ENCODING_VERSION,
            vertices: self.vertices,
            root: None,
        }
    }
}

/// `[app internal] load build context` for `[internal] load build context` of target `app`;
/// a step shared by several targets keeps the name of the first one that added it.
// Compat: buildx progress.WithPrefix, used by bake when several targets build.
fn prefixed(target: &str, name: &str) -> String {
    match name.strip_prefix('[') {
        Some(rest) => format!("[{target} {rest}"),
        None if name.is_empty() => String::new(),
        None => format!("[{target}] {name}"),
    }
}

/// For each local source, the paths its users read (`None`: the whole context).
// Compat: the Dockerfile front end of BuildKit gives the context source the paths COPY and
// ADD read, so files no instruction reads are never transferred nor hashed.
fn read_paths(
    definition: &Definition,
    by_digest: &HashMap<&Digest, &Vertex>,
) -> HashMap<Digest, Option<BTreeSet<String>>> {
    let is_local = |digest: &Digest| {
        by_digest.get(digest).is_some_and(
            |v| matches!(v.op.as_ref(), Op::Source(s) if Source::parse(s).is_ok_and(|s| s.is_local())),
        )
    };
    let mut read: HashMap<Digest, Option<BTreeSet<String>>> = HashMap::new();
    let mut note = |digest: Digest, path: Option<&str>| {
        let cleaned = path.map(|p| {
            crate::path::clean_in_root(p)
                .trim_start_matches('/')
                .to_owned()
        });
        let entry = read.entry(digest).or_insert_with(|| Some(BTreeSet::new()));
        match (entry.as_mut(), cleaned) {
            (Some(paths), Some(path)) if !path.is_empty() && path != "." => {
                paths.insert(path);
            }
            _ => *entry = None,
        }
    };
    for vertex in &definition.vertices {
        let input = |index: usize| vertex.inputs.get(index).map(|e| e.vertex);
        match vertex.op.as_ref() {
            Op::File(op) => {
                for action in &op.actions {
                    if let crate::graph::FileAction::Copy(copy) = action
                        && let Some(digest) = copy.source.and_then(input)
                        && is_local(&digest)
                    {
                        note(digest, Some(&copy.src));
                    }
                }
                if let Some(digest) = op.base.and_then(input)
                    && is_local(&digest)
                {
                    note(digest, None);
                }
            }
            Op::Exec(op) => {
                for mount in &op.mounts {
                    if let Some(digest) = mount.input.and_then(input)
                        && is_local(&digest)
                    {
                        note(digest, Some(&mount.selector));
                    }
                }
            }
            Op::Merge(_) => {
                for edge in &vertex.inputs {
                    if is_local(&edge.vertex) {
                        note(edge.vertex, None);
                    }
                }
            }
            Op::Source(_) => {}
        }
    }
    // A root that is the context itself (`FROM` a local context, exported as is) reads all.
    if let Some(root) = &definition.root
        && is_local(&root.vertex)
    {
        note(root.vertex, None);
    }
    read
}

/// The vertices reachable from the root (and all others), inputs before their users.
fn topological<'a>(
    definition: &'a Definition,
    by_digest: &HashMap<&Digest, &'a Vertex>,
) -> Result<Vec<&'a Vertex>, String> {
    let mut order = Vec::with_capacity(definition.vertices.len());
    let mut done: HashSet<Digest> = HashSet::new();
    let mut open: HashSet<Digest> = HashSet::new();
    for start in &definition.vertices {
        let mut stack: Vec<(&Vertex, usize)> = vec![(start, 0)];
        while let Some((vertex, next)) = stack.pop() {
            if next == 0 {
                if done.contains(&vertex.digest) {
                    continue;
                }
                open.insert(vertex.digest);
            }
            if let Some(edge) = vertex.inputs.get(next) {
                stack.push((vertex, next + 1));
                if done.contains(&edge.vertex) {
                    continue;
                }
                if open.contains(&edge.vertex) {
                    return Err(format!("vertex {} depends on itself", edge.vertex));
                }
                let input = by_digest
                    .get(&edge.vertex)
                    .ok_or_else(|| format!("edge to unknown vertex {}", edge.vertex))?;
                stack.push((input, 0));
            } else {
                open.remove(&vertex.digest);
                done.insert(vertex.digest);
                order.push(vertex);
            }
        }
    }
    Ok(order)
}

/// Which added roots reach `vertex` (to name the targets a failing step belongs to).
pub(super) fn reaches(definition: &Definition, root: Option<&Edge>, vertex: &Digest) -> bool {
    let Some(root) = root else { return false };
    let by_digest: HashMap<&Digest, &Vertex> =
        definition.vertices.iter().map(|v| (&v.digest, v)).collect();
    let mut seen: HashSet<&Digest> = HashSet::new();
    let mut stack = vec![&root.vertex];
    while let Some(digest) = stack.pop() {
        if digest == vertex {
            return true;
        }
        if !seen.insert(digest) {
            continue;
        }
        if let Some(v) = by_digest.get(digest) {
            stack.extend(v.inputs.iter().map(|e| &e.vertex));
        }
    }
    false
}

/// Every vertex `root` depends on, itself included, inputs before dependents.
pub(super) fn reachable(definition: &crate::graph::Definition, root: &Digest) -> Vec<Digest> {
    let by_digest: std::collections::BTreeMap<&Digest, &crate::graph::Vertex> =
        definition.vertices.iter().map(|v| (&v.digest, v)).collect();
    let mut seen: BTreeSet<Digest> = BTreeSet::new();
    let mut order = Vec::new();
    let mut stack = vec![(*root, false)];
    while let Some((digest, ready)) = stack.pop() {
        if ready {
            order.push(digest);
            continue;
        }
        if !seen.insert(digest) {
            continue;
        }
        stack.push((digest, true));
        if let Some(vertex) = by_digest.get(&digest) {
            stack.extend(vertex.inputs.iter().map(|e| (e.vertex, false)));
        }
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_carry_their_target_as_buildx_prefixes_them() {
        assert_eq!(
            prefixed("app", "[internal] load build context"),
            "[app internal] load build context"
        );
        assert_eq!(
            prefixed("app", "[build 2/3] RUN make"),
            "[app build 2/3] RUN make"
        );
        assert_eq!(prefixed("app", "scratch"), "[app] scratch");
        assert_eq!(prefixed("app", ""), "");
    }
}
