//! Include patterns (BuildKit's `local.includepattern`). Part of `source::local`.

use crate::source::dockerignore::{self, Pattern};
use crate::source::error::Result;

/// Include patterns (BuildKit's `local.includepattern`): a path is included when a pattern
/// matches it or one of its parents.
#[derive(Debug)]
pub(super) struct Includes {
    patterns: Vec<Pattern>,
    /// Each pattern's components, `None` standing for `**`, to decide which directories to
    /// enter on the way to a match.
    components: Vec<Vec<Option<Pattern>>>,
}

impl Includes {
    pub(super) fn new(patterns: &[String]) -> Result<Self> {
        let mut compiled = Vec::new();
        let mut components = Vec::new();
        for pattern in patterns {
            let cleaned = dockerignore::clean(pattern.trim_start_matches('/'));
            compiled.push(Pattern::new(&cleaned)?);
            components.push(
                cleaned
                    .split('/')
                    .map(|part| {
                        if part.contains("**") {
                            Ok(None)
                        } else {
                            Pattern::new(part).map(Some)
                        }
                    })
                    .collect::<Result<_>>()?,
            );
        }
        Ok(Self {
            patterns: compiled,
            components,
        })
    }

    pub(super) fn includes(&self, path: &str) -> bool {
        self.patterns.iter().any(|p| p.matches_or_parent(path))
    }

    /// Returns true when some pattern may match a path below the directory `dir`.
    // Compat: fsutil's include handling enters a directory when it is a prefix of a pattern.
    pub(super) fn may_match_below(&self, dir: &str) -> bool {
        let dir_parts: Vec<&str> = dir.split('/').collect();
        self.components.iter().any(|parts| {
            for (index, dir_part) in dir_parts.iter().enumerate() {
                match parts.get(index) {
                    None => return false,
                    Some(None) => return true,
                    Some(Some(part)) if !part.matches(dir_part) => return false,
                    Some(Some(_)) => {}
                }
            }
            parts.len() > dir_parts.len()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_on_the_way_to_a_pattern_are_entered() {
        let includes = Includes::new(&["src/*/main.rs".to_owned(), "a/**/z".to_owned()])
            .expect("valid patterns");
        assert!(includes.may_match_below("src"));
        assert!(includes.may_match_below("src/bin"));
        assert!(!includes.may_match_below("src/bin/main.rs"));
        assert!(!includes.may_match_below("docs"));
        assert!(includes.may_match_below("a/b/c/d"));
        assert!(includes.includes("src/bin/main.rs"));
        assert!(includes.includes("a/b/z/inner"));
        assert!(!includes.includes("src/bin/lib.rs"));
    }
}
