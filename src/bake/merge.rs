//! How two definitions of one target combine, per attribute, as buildx's `Target.Merge`
//! does: used for several blocks or files defining the same target and for `inherits`.
//!
//! | class | attributes |
//! | --- | --- |
//! | replace when set | context, dockerfile, dockerfile-inline, target, tags, platforms, cache-to, output, pull, no-cache, network, shm-size, call, description (non-empty), resources |
//! | merge by key, `null` skipped | args, labels, contexts, extra-hosts |
//! | append (de-duplicated by [`normalize`]) | annotations, attest, secret, ssh, cache-from, no-cache-filter, ulimits, entitlements, policy, inherits |

use crate::bake::model::{NullableMap, Target};

fn merge_map(into: &mut NullableMap, from: &NullableMap) {
    for (key, value) in from {
        if value.is_some() {
            into.insert(key.clone(), value.clone());
        }
    }
}

fn replace<T: Clone>(into: &mut Option<T>, from: &Option<T>) {
    if from.is_some() {
        into.clone_from(from);
    }
}

impl Target {
    /// Merges `other` on top of `self`, `other` winning where the attribute replaces.
    // Compat: buildx Target.Merge (bake/bake.go).
    pub fn merge(&mut self, other: &Target) {
        replace(&mut self.context, &other.context);
        replace(&mut self.dockerfile, &other.dockerfile);
        replace(&mut self.dockerfile_inline, &other.dockerfile_inline);
        merge_map(&mut self.args, &other.args);
        merge_map(&mut self.contexts, &other.contexts);
        merge_map(&mut self.labels, &other.labels);
        merge_map(&mut self.extra_hosts, &other.extra_hosts);
        replace(&mut self.tags, &other.tags);
        replace(&mut self.target, &other.target);
        replace(&mut self.call, &other.call);
        self.annotations.extend(other.annotations.iter().cloned());
        self.attest.extend(other.attest.iter().cloned());
        self.secret.extend(other.secret.iter().cloned());
        self.ssh.extend(other.ssh.iter().cloned());
        replace(&mut self.platforms, &other.platforms);
        self.cache_from.extend(other.cache_from.iter().cloned());
        replace(&mut self.cache_to, &other.cache_to);
        replace(&mut self.output, &other.output);
        replace(&mut self.pull, &other.pull);
        replace(&mut self.no_cache, &other.no_cache);
        replace(&mut self.network, &other.network);
        self.no_cache_filter
            .extend(other.no_cache_filter.iter().cloned());
        replace(&mut self.shm_size, &other.shm_size);
        self.ulimits.extend(other.ulimits.iter().cloned());
        replace(&mut self.resources, &other.resources);
        if other.description.as_deref().is_some_and(|d| !d.is_empty()) {
            self.description.clone_from(&other.description);
        }
        self.entitlements.extend(other.entitlements.iter().cloned());
        self.policy.extend(other.policy.iter().cloned());
        self.inherits.extend(other.inherits.iter().cloned());
    }

    /// De-duplicates lists and drops empty values, as buildx does after every resolution.
    // Compat: buildx Target.normalize (bake/bake.go).
    pub fn normalize(&mut self) {
        dedupe_strings(&mut self.annotations);
        if let Some(tags) = &mut self.tags {
            dedupe_strings(tags);
        }
        if let Some(platforms) = &mut self.platforms {
            dedupe_strings(platforms);
        }
        dedupe_strings(&mut self.no_cache_filter);
        dedupe_strings(&mut self.ulimits);
        if self.network.as_deref() == Some("host") {
            self.entitlements.push("network.host".to_owned());
        }
        dedupe_strings(&mut self.entitlements);
        dedupe_by_key(&mut self.attest, |a| a.kind.clone());
        dedupe_by_key(&mut self.secret, |s| s.id.clone());
        dedupe_by_key(&mut self.ssh, |s| s.id.clone());
        dedupe_exact(&mut self.cache_from);
        if let Some(cache_to) = &mut self.cache_to {
            dedupe_exact(cache_to);
        }
        if let Some(output) = &mut self.output {
            dedupe_exact(output);
        }
        self.contexts
            .retain(|_, value| value.as_deref().is_some_and(|v| !v.is_empty()));
        for map in [&mut self.args, &mut self.labels, &mut self.extra_hosts] {
            map.retain(|_, value| value.is_some());
        }
    }
}

fn dedupe_strings(list: &mut Vec<String>) {
    if list.len() > 32 {
        let mut seen = std::collections::HashSet::new();
        list.retain(|item| !item.is_empty() && seen.insert(item.clone()));
        return;
    }
    // Lists are short (tags, platforms): a scan of the kept prefix beats hashing copies.
    let mut kept = 0;
    for index in 0..list.len() {
        if list[index].is_empty() || list[..kept].contains(&list[index]) {
            continue;
        }
        list.swap(kept, index);
        kept += 1;
    }
    list.truncate(kept);
}

/// Keeps the first position of each key with the last value given for it.
fn dedupe_by_key<T: Clone>(list: &mut Vec<T>, key: impl Fn(&T) -> String) {
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    let mut index = std::collections::HashMap::new();
    for item in list.drain(..) {
        match index.get(&key(&item)) {
            Some(&position) => out[position] = item,
            None => {
                index.insert(key(&item), out.len());
                out.push(item);
            }
        }
    }
    *list = out;
}

// Diverges: buildx removes a duplicate by swapping in the last element, which reorders the
// list; we keep the first occurrence in place.
fn dedupe_exact<T: PartialEq>(list: &mut Vec<T>) {
    let mut out: Vec<T> = Vec::with_capacity(list.len());
    for item in list.drain(..) {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    *list = out;
}

#[cfg(test)]
mod tests {
    use crate::bake::model::Target;
    use crate::buildflags::{Attest, CacheEntry, ExportEntry, Secret};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn replace_class_takes_the_later_value_when_set() {
        let mut base = Target {
            context: Some("a".into()),
            dockerfile: Some("A".into()),
            tags: Some(strings(&["x"])),
            platforms: Some(strings(&["linux/amd64"])),
            pull: Some(true),
            ..Target::default()
        };
        let child = Target {
            dockerfile: Some("B".into()),
            tags: Some(strings(&["y"])),
            pull: Some(false),
            ..Target::default()
        };
        base.merge(&child);
        assert_eq!(base.context.as_deref(), Some("a"));
        assert_eq!(base.dockerfile.as_deref(), Some("B"));
        assert_eq!(base.tags, Some(strings(&["y"])));
        assert_eq!(base.platforms, Some(strings(&["linux/amd64"])));
        assert_eq!(base.pull, Some(false));
    }

    #[test]
    fn output_cache_to_and_platforms_replace_whole_lists() {
        let mut base = Target {
            output: Some(vec![ExportEntry::parse("type=local,dest=a").unwrap()]),
            cache_to: Some(CacheEntry::parse_list("type=inline").unwrap()),
            ..Target::default()
        };
        let child = Target {
            output: Some(vec![ExportEntry::parse("type=tar,dest=b").unwrap()]),
            cache_to: Some(Vec::new()),
            ..Target::default()
        };
        base.merge(&child);
        assert_eq!(base.output.as_ref().unwrap()[0].kind, "tar");
        assert_eq!(base.cache_to, Some(Vec::new()));
    }

    #[test]
    fn maps_merge_by_key_and_skip_null() {
        let mut base = Target::default();
        base.args.insert("A".into(), Some("1".into()));
        base.args.insert("B".into(), Some("1".into()));
        let mut child = Target::default();
        child.args.insert("B".into(), Some("2".into()));
        child.args.insert("A".into(), None);
        child.labels.insert("l".into(), Some("v".into()));
        child.contexts.insert("c".into(), Some("target:x".into()));
        child.extra_hosts.insert("h".into(), Some("1.2.3.4".into()));
        base.merge(&child);
        assert_eq!(base.args["A"].as_deref(), Some("1"), "null does not delete");
        assert_eq!(base.args["B"].as_deref(), Some("2"));
        assert_eq!(base.labels["l"].as_deref(), Some("v"));
        assert_eq!(base.contexts["c"].as_deref(), Some("target:x"));
        assert_eq!(base.extra_hosts["h"].as_deref(), Some("1.2.3.4"));
    }

    #[test]
    fn append_class_concatenates_and_normalize_dedupes() {
        let mut base = Target {
            cache_from: CacheEntry::parse_list("a").unwrap(),
            no_cache_filter: strings(&["s1"]),
            annotations: strings(&["k=v"]),
            entitlements: strings(&["security.insecure"]),
            ulimits: strings(&["nofile=1:2"]),
            ..Target::default()
        };
        let child = Target {
            cache_from: CacheEntry::parse_list("a,b").unwrap(),
            no_cache_filter: strings(&["s1", "s2"]),
            annotations: strings(&["k=v", ""]),
            entitlements: strings(&["security.insecure"]),
            ulimits: strings(&["nproc=3"]),
            ..Target::default()
        };
        base.merge(&child);
        base.normalize();
        assert_eq!(base.cache_from.len(), 2);
        assert_eq!(base.no_cache_filter, strings(&["s1", "s2"]));
        assert_eq!(base.annotations, strings(&["k=v"]));
        assert_eq!(base.entitlements, strings(&["security.insecure"]));
        assert_eq!(base.ulimits, strings(&["nofile=1:2", "nproc=3"]));
    }

    #[test]
    fn keyed_lists_keep_the_last_value_per_key() {
        let mut base = Target {
            secret: vec![Secret::parse("id=a,src=one").unwrap()],
            attest: vec![Attest::parse("type=sbom").unwrap()],
            ..Target::default()
        };
        let child = Target {
            secret: vec![
                Secret::parse("id=b,env=B").unwrap(),
                Secret::parse("id=a,src=two").unwrap(),
            ],
            attest: vec![Attest::parse("type=sbom,disabled=true").unwrap()],
            ..Target::default()
        };
        base.merge(&child);
        base.normalize();
        let ids: Vec<(&str, &str)> = base
            .secret
            .iter()
            .map(|s| (s.id.as_str(), s.src.as_str()))
            .collect();
        assert_eq!(ids, [("a", "two"), ("b", "")]);
        assert_eq!(base.attest.len(), 1);
        assert!(base.attest[0].disabled);
    }

    #[test]
    fn description_replaces_only_when_non_empty() {
        let mut base = Target {
            description: Some("parent".into()),
            ..Target::default()
        };
        base.merge(&Target {
            description: Some(String::new()),
            ..Target::default()
        });
        assert_eq!(base.description.as_deref(), Some("parent"));
    }

    #[test]
    fn network_host_adds_its_entitlement_and_empty_contexts_drop() {
        let mut target = Target {
            network: Some("host".into()),
            ..Target::default()
        };
        target.contexts.insert("a".into(), Some(String::new()));
        target.normalize();
        assert_eq!(target.entitlements, strings(&["network.host"]));
        assert!(target.contexts.is_empty());
    }

    #[test]
    fn inherits_accumulate_across_definitions() {
        let mut base = Target {
            inherits: strings(&["a"]),
            ..Target::default()
        };
        base.merge(&Target {
            inherits: strings(&["b"]),
            ..Target::default()
        });
        assert_eq!(base.inherits, strings(&["a", "b"]));
    }
}
