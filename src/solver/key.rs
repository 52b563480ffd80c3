//! Cache keys: a vertex's key is a digest over the op's [`CacheMap`] digest and, per input,
//! either the input's own key (with the output used and the selector) or the content digest
//! of the selected part of the input. Keys are computed bottom-up, so a key stands for the
//! whole history that produced a result, not for the graph that asked for it.

use crate::digest::Digest;
use crate::solver::exec::CacheMap;

/// Names the key encoding; part of every key, so changing the encoding changes this string
/// and old keys can never collide with new ones.
pub const CACHE_KEY_VERSION: &str = "bake.solver.cachekey.v1";

/// How one input contributes to a vertex's cache key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKey {
    /// By the input vertex's cache key and the output the edge uses.
    Key {
        /// The input vertex's cache key.
        key: Digest,
        /// The output index of the edge.
        output: usize,
        /// The op's selector for this input, if any.
        selector: Option<Digest>,
    },
    /// By the digest of the content the op reads from the input.
    Content {
        /// The content digest from [`OpExec::content_digest`](crate::solver::OpExec::content_digest).
        digest: Digest,
        /// The op's selector for this input, if any.
        selector: Option<Digest>,
    },
}

/// Returns the cache key of a vertex from its op's map and its inputs' contributions.
// Compat: buildkit solver/cachekey.go + cachemanager.go: key = f(op cache-map digest, per input
// (input key | content digest) with selector). The byte encoding is ours, not buildkit's.
pub fn cache_key(map: &CacheMap, inputs: &[InputKey]) -> Digest {
    const NONE: &[u8] = b"";
    let count = (inputs.len() as u64).to_be_bytes();
    let outputs: Vec<[u8; 8]> = inputs
        .iter()
        .map(|input| match input {
            InputKey::Key { output, .. } => (*output as u64).to_be_bytes(),
            InputKey::Content { .. } => [0; 8],
        })
        .collect();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(3 + 4 * inputs.len());
    parts.push(CACHE_KEY_VERSION.as_bytes());
    parts.push(map.digest.as_bytes());
    parts.push(&count);
    for (input, output) in inputs.iter().zip(&outputs) {
        let (tag, digest, selector): (&[u8], _, _) = match input {
            InputKey::Key { key, selector, .. } => (b"key", key, selector),
            InputKey::Content { digest, selector } => (b"content", digest, selector),
        };
        parts.push(tag);
        parts.push(digest.as_bytes());
        parts.push(output);
        parts.push(selector.as_ref().map_or(NONE, |s| s.as_bytes()));
    }
    Digest::of_parts(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::exec::Dep;

    fn map(text: &str) -> CacheMap {
        CacheMap {
            digest: Digest::of(text.as_bytes()),
            deps: vec![Dep::default()],
        }
    }

    #[test]
    fn keys_are_stable_golden_digests() {
        // These change only when the encoding changes; then bump CACHE_KEY_VERSION.
        let root = cache_key(&map("source"), &[]);
        assert_eq!(
            root.to_string(),
            "sha256:d10a679d478f3fbed8065bd71254007b648939081295f26e4b0d95fd9b4489c0"
        );
        let child = cache_key(
            &map("run"),
            &[InputKey::Key {
                key: root,
                output: 0,
                selector: None,
            }],
        );
        assert_eq!(
            child.to_string(),
            "sha256:a55638918ac60448fb00a001f97c9dfca4eb8fdfdbdf1f8c88f7f47066e66ba3"
        );
        let copied = cache_key(
            &map("copy"),
            &[InputKey::Content {
                digest: Digest::of(b"files"),
                selector: Some(Digest::of(b"/src")),
            }],
        );
        assert_eq!(
            copied.to_string(),
            "sha256:645095b7809da5fc26b91e1e2ce5677735ac3cdad57276fd90b912ac24818a3c"
        );
    }

    #[test]
    fn every_part_of_an_input_changes_the_key() {
        let base = Digest::of(b"base");
        let key = |output, selector| {
            cache_key(
                &map("run"),
                &[InputKey::Key {
                    key: base,
                    output,
                    selector,
                }],
            )
        };
        let plain = key(0, None);
        assert_ne!(plain, key(1, None));
        assert_ne!(plain, key(0, Some(Digest::of(b"/a"))));
        let content = cache_key(
            &map("run"),
            &[InputKey::Content {
                digest: base,
                selector: None,
            }],
        );
        assert_ne!(plain, content);
        assert_ne!(cache_key(&map("run"), &[]), cache_key(&map("other"), &[]));
    }
}
