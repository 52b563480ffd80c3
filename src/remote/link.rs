//! `target:` links on the Docker engine: a linked target is exported into the engine under
//! an internal name once, the targets that link it wait for that name and take it as an
//! image context, and the images are removed when the build ends. Part of `remote`.
//!
//! A `remote` builder has no image store bake can name, so links fail there (see `solve`).

use std::collections::{BTreeMap, BTreeSet};

use tokio::sync::watch;

use crate::plan::{BuildRequest, NamedContext};
use crate::remote::builder::{Builder, Driver};
use crate::remote::error::{Error, Result};
use crate::remote::saved::internal_image_name;
use crate::remote::transport::{Dialer, remove_image};

/// The engine images of linked targets, and who waits for them.
pub(crate) struct Links {
    /// Linked target → its internal image name and the channel that says it is ready.
    images: BTreeMap<String, (String, watch::Sender<Option<String>>)>,
}

/// What one target publishes and what it waits for.
pub(crate) type TargetLinks = (
    Option<(String, watch::Sender<Option<String>>)>,
    BTreeMap<String, watch::Receiver<Option<String>>>,
);

/// The targets `requests` link.
fn linked(requests: &[BuildRequest]) -> BTreeSet<String> {
    requests
        .iter()
        .flat_map(|request| request.named_contexts.values())
        .filter_map(|context| match context {
            NamedContext::Target { name } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

impl Links {
    /// Finds the linked targets of `groups` (target → its requests); on the docker driver
    /// each gets an internal image name. Links to a target that is not built, or in a loop,
    /// are errors, since the targets would wait forever.
    pub(crate) fn new(
        builder: &Builder,
        groups: &BTreeMap<String, Vec<BuildRequest>>,
    ) -> Result<Self> {
        let mut images = BTreeMap::new();
        if builder.driver != Driver::Docker {
            return Ok(Self { images });
        }
        for (target, requests) in groups {
            for name in linked(requests) {
                if !groups.contains_key(&name) {
                    return Err(Error::Solve {
                        target: target.clone(),
                        message: format!("it links `{name}`, which is not built"),
                    });
                }
                images
                    .entry(name)
                    .or_insert_with(|| (internal_image_name("link"), watch::channel(None).0));
            }
        }
        for target in groups.keys() {
            let mut path = vec![target.clone()];
            if let Some(cycle) = find_loop(groups, &mut path) {
                return Err(Error::Solve {
                    target: target.clone(),
                    message: format!("its `target:` links form a loop: {cycle}"),
                });
            }
        }
        Ok(Self { images })
    }

    /// What `target` exports for others, and the images of the targets it links.
    pub(crate) fn of(&self, target: &str, requests: &[BuildRequest]) -> TargetLinks {
        let publish = self
            .images
            .get(target)
            .map(|(name, sender)| (name.clone(), sender.clone()));
        let waits = linked(requests)
            .into_iter()
            .filter_map(|name| {
                let receiver = self.images.get(&name)?.1.subscribe();
                Some((name, receiver))
            })
            .collect();
        (publish, waits)
    }

    /// Removes the internal images from the engine; one that was never made is skipped.
    pub(crate) async fn remove(&self, dialer: &Dialer) {
        for (name, _) in self.images.values() {
            remove_image(dialer, name).await;
        }
    }
}

/// Follows the links from the last target of `path`; returns the loop as text if one comes
/// back to a target already on the path.
fn find_loop(
    groups: &BTreeMap<String, Vec<BuildRequest>>,
    path: &mut Vec<String>,
) -> Option<String> {
    let last = path.last().cloned()?;
    for next in linked(groups.get(&last).map_or(&[][..], Vec::as_slice)) {
        if let Some(start) = path.iter().position(|t| *t == next) {
            let mut names: Vec<String> = path[start..].iter().map(|t| format!("`{t}`")).collect();
            names.push(format!("`{next}`"));
            return Some(names.join(" → "));
        }
        path.push(next);
        if let Some(found) = find_loop(groups, path) {
            return Some(found);
        }
        path.pop();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(links: &[&str]) -> Vec<BuildRequest> {
        vec![crate::plan::tests::linking("", None, links)]
    }

    #[test]
    fn loops_are_found_and_shared_links_are_not_loops() {
        let mut groups = BTreeMap::from([
            ("a".to_owned(), requests(&["base"])),
            ("b".to_owned(), requests(&["base"])),
            ("base".to_owned(), requests(&["os"])),
            ("os".to_owned(), requests(&[])),
        ]);
        assert_eq!(find_loop(&groups, &mut vec!["a".to_owned()]), None);
        groups.insert("os".to_owned(), requests(&["a"]));
        assert_eq!(
            find_loop(&groups, &mut vec!["a".to_owned()]).as_deref(),
            Some("`a` → `base` → `os` → `a`")
        );
    }
}
