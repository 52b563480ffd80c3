//! From all defined targets and groups to the requested, fully resolved ones: name
//! sanitising and globs, group expansion, `inherits` (cycle-tolerant, as buildx),
//! `--set` overrides, normalisation, defaults, `target:` links and `SOURCE_DATE_EPOCH`.

use std::collections::BTreeMap;

use crate::bake::fasthash::{FastMap as HashMap, FastSet as HashSet};
use std::rc::Rc;

use crate::bake::error::{Diagnostic, Error};
use crate::bake::model::{Group, Target};
use crate::bake::overrides::{self, Overrides};
use crate::buildflags::ExportEntry;

/// Every target and group the files define, before resolution.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Targets, one per name, in definition order.
    pub targets: Vec<Target>,
    /// Groups, one per name, in definition order.
    pub groups: Vec<Group>,
    /// Positions by name, built on first lookup (resolution looks names up thousands of
    /// times in large monorepos).
    index: std::sync::OnceLock<(HashMap<String, usize>, HashMap<String, usize>)>,
}

/// Targets resolved without a cycle cut, shared by every child that inherits them.
struct Memo<'a> {
    done: HashMap<String, Rc<Target>>,
    /// Names some target inherits from: only these are worth keeping once resolved.
    parents: HashSet<&'a str>,
}

impl<'a> Memo<'a> {
    fn new(config: &'a Config) -> Self {
        Self {
            done: HashMap::default(),
            parents: config
                .targets
                .iter()
                .flat_map(|t| t.inherits.iter().map(String::as_str))
                .collect(),
        }
    }
}

/// The requested targets, resolved: what `--print` shows and what gets built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// The groups involved, including the synthetic `default` group of requested names.
    pub groups: BTreeMap<String, Group>,
    /// The targets to build, including linked (`target:`) dependencies.
    pub targets: BTreeMap<String, Target>,
}

impl Config {
    /// Merges another configuration on top: targets merge by name, groups replace.
    pub fn extend(&mut self, other: Config) {
        let mut index = std::mem::take(&mut self.index)
            .into_inner()
            .unwrap_or_else(|| self.build_index());
        for target in other.targets {
            match index.0.get(&target.name) {
                Some(&position) => self.targets[position].merge(&target),
                None => {
                    index.0.insert(target.name.clone(), self.targets.len());
                    self.targets.push(target);
                }
            }
        }
        for group in other.groups {
            match index.1.get(&group.name) {
                Some(&position) => self.groups[position] = group,
                None => {
                    index.1.insert(group.name.clone(), self.groups.len());
                    self.groups.push(group);
                }
            }
        }
        self.index = std::sync::OnceLock::from(index);
    }

    /// Creates a configuration from targets and groups (names must be unique).
    pub fn new(targets: Vec<Target>, groups: Vec<Group>) -> Self {
        Self {
            targets,
            groups,
            index: std::sync::OnceLock::new(),
        }
    }

    fn build_index(&self) -> (HashMap<String, usize>, HashMap<String, usize>) {
        let targets = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let groups = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.clone(), i))
            .collect();
        (targets, groups)
    }

    fn index(&self) -> &(HashMap<String, usize>, HashMap<String, usize>) {
        self.index.get_or_init(|| self.build_index())
    }

    fn group(&self, name: &str) -> Option<&Group> {
        self.index().1.get(name).map(|&i| &self.groups[i])
    }

    fn target(&self, name: &str) -> Option<&Target> {
        self.index().0.get(name).map(|&i| &self.targets[i])
    }

    /// Expands a name into target names and the groups passed through.
    // Compat: buildx Config.group (bake/bake.go): a group seen twice expands to what it
    // expanded to the first time (nothing while in progress, so the member's own name),
    // so cycles end.
    fn expand(
        &self,
        name: &str,
        visited: &mut HashMap<String, Vec<String>>,
    ) -> (Vec<String>, Vec<String>) {
        if let Some(targets) = visited.get(name) {
            return (targets.clone(), Vec::new());
        }
        let Some(group) = self.group(name) else {
            return (vec![name.to_owned()], Vec::new());
        };
        visited.insert(name.to_owned(), Vec::new());
        let mut targets = Vec::new();
        let mut groups = vec![name.to_owned()];
        for member in &group.targets {
            let (t, g) = self.expand(member, visited);
            // Compat: buildx Config.group: a member that expands to nothing (a group being
            // expanded, such as `default` listing a target also named `default`) stands for
            // itself.
            if t.is_empty() {
                targets.push(member.clone());
            } else {
                targets.extend(t);
            }
            groups.extend(g);
        }
        visited.insert(name.to_owned(), targets.clone());
        (targets, groups)
    }

    /// Resolves one target: parents first, then itself, then its overrides.
    // Compat: buildx Config.target (bake/bake.go): a target met again while resolving is
    // skipped, so `inherits` cycles resolve to what is reachable instead of failing.
    ///
    /// Returns the target and whether a cycle was cut below it. Results with no cut are the
    /// same whichever target asked for them, so parents go in `memo` and large monorepos
    /// resolve each shared parent once. Shared results are reference-counted: a parent is
    /// only read by `merge`, so it is never copied per child.
    fn resolve_target(
        &self,
        name: &str,
        overrides: &Overrides,
        visited: &mut HashMap<String, Option<Rc<Target>>>,
        memo: &mut Memo,
    ) -> Result<(Option<Rc<Target>>, bool), Diagnostic> {
        if let Some(done) = memo.done.get(name) {
            return Ok((Some(Rc::clone(done)), false));
        }
        if let Some(done) = visited.get(name) {
            // `None` means "being resolved": the cycle is cut here.
            return Ok((done.clone(), done.is_none()));
        }
        visited.insert(name.to_owned(), None);
        let Some(own) = self.target(name) else {
            return Err(self.unknown_target(name));
        };
        let mut merged = Target::default();
        let mut cut = false;
        for parent in &own.inherits {
            let (parent, parent_cut) = self.resolve_target(parent, overrides, visited, memo)?;
            cut |= parent_cut;
            if let Some(parent) = parent {
                merged.merge(&parent);
            }
        }
        merged.merge(own);
        merged.name = name.to_owned();
        if let Some(list) = overrides.get(name) {
            overrides::apply(&mut merged, list)?;
        }
        merged.normalize();
        let merged = Rc::new(merged);
        visited.insert(name.to_owned(), Some(Rc::clone(&merged)));
        if !cut {
            memo.done.insert(name.to_owned(), Rc::clone(&merged));
        }
        Ok((Some(merged), cut))
    }

    fn unknown_target(&self, name: &str) -> Diagnostic {
        let mut known: Vec<String> = self.targets.iter().map(|t| t.name.clone()).collect();
        known.extend(self.groups.iter().map(|g| g.name.clone()));
        let help = match crate::bake::error::closest(name, &known) {
            Some(similar) => format!("did you mean `{similar}`?"),
            None if known.is_empty() => "the bake files define no targets".to_owned(),
            None => {
                known.sort();
                format!("defined targets and groups: {}", known.join(", "))
            }
        };
        Diagnostic::new("bake::unknown_target", format!("unknown target `{name}`")).help(help)
    }

    /// Resolves a target the way `bake <name>` asks for it: with defaults applied.
    fn resolve_final(
        &self,
        name: &str,
        overrides: &Overrides,
        memo: &mut Memo,
    ) -> Result<Target, Diagnostic> {
        let resolved = self
            .resolve_target(name, overrides, &mut HashMap::default(), memo)?
            .0;
        // The memo keeps its own reference to every target it resolved; drop it first
        // for targets nothing inherits from, so the result moves out without a copy.
        if !memo.parents.contains(name) {
            memo.done.remove(name);
        }
        let mut target = resolved.map_or_else(Target::default, Rc::unwrap_or_clone);
        target.name = name.to_owned();
        target.inherits.clear();
        target.context = Some(match target.context.take() {
            None => ".".to_owned(),
            Some(context) => clean_context(&context),
        });
        if target.dockerfile.as_deref().is_none_or(str::is_empty) {
            target.dockerfile = Some("Dockerfile".to_owned());
        }
        Ok(target)
    }

    /// Expands globs in requested names over targets and groups.
    fn expand_patterns(&self, requested: &[String]) -> Result<Vec<String>, Diagnostic> {
        let mut out = Vec::new();
        for name in requested {
            if !overrides::is_pattern(name) {
                out.push(name.clone());
                continue;
            }
            let mut matches: Vec<String> = self
                .groups
                .iter()
                .map(|g| &g.name)
                .chain(self.targets.iter().map(|t| &t.name))
                .filter(|candidate| overrides::pattern_matches(name, candidate))
                .cloned()
                .collect();
            matches.sort();
            matches.dedup();
            if matches.is_empty() {
                return Err(Diagnostic::new(
                    "bake::unknown_target",
                    format!("could not find any target matching `{name}`"),
                ));
            }
            out.extend(matches);
        }
        Ok(out)
    }
}

/// Whether a context is a URL rather than a local path.
pub(crate) fn is_remote(context: &str) -> bool {
    [
        "http://",
        "https://",
        "git://",
        "git@",
        "ssh://",
        "github.com/",
    ]
    .iter()
    .any(|prefix| context.starts_with(prefix))
        || context.contains("://")
}

/// Cleans a local context path like Go's `path.Clean`; URLs pass through and `cwd://` is
/// stripped.
pub(crate) fn clean_context(context: &str) -> String {
    let local = context.strip_prefix("cwd://").unwrap_or(context);
    if local != context || !is_remote(context) {
        crate::path::clean(local)
    } else {
        context.to_owned()
    }
}

/// Resolves the requested names (empty means `default`) into a [`Resolved`] set.
// Compat: buildx ReadTargets (bake/bake.go).
pub fn resolve(
    config: &Config,
    requested: &[String],
    sets: &[String],
    env: &BTreeMap<String, String>,
) -> Result<Resolved, Error> {
    let mut requested: Vec<String> = requested.iter().map(|n| n.replace('.', "_")).collect();
    if requested.is_empty() {
        requested.push("default".to_owned());
    }
    let requested = config.expand_patterns(&requested)?;
    let names: Vec<&str> = config.targets.iter().map(|t| t.name.as_str()).collect();
    let overrides = overrides::parse(sets, &names, env)?;
    let mut resolved = Resolved::default();
    let mut memo = Memo::new(config);
    let mut problems = Vec::new();
    for name in &requested {
        let (targets, groups) = config.expand(name, &mut HashMap::default());
        for target in targets {
            if resolved.targets.contains_key(&target) {
                continue;
            }
            match config.resolve_final(&target, &overrides, &mut memo) {
                Ok(t) => {
                    resolved.targets.insert(target, t);
                }
                Err(problem) => problems.push(problem),
            }
        }
        for group in groups {
            if let Some(g) = config.group(&group) {
                resolved.groups.insert(group, g.clone());
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error {
            diagnostics: problems,
        });
    }
    add_requested_to_default(&mut resolved.groups, &requested);
    let names: Vec<String> = resolved.targets.keys().cloned().collect();
    let mut links = Links::default();
    for name in names {
        load_links(
            config,
            &name,
            &overrides,
            &mut resolved,
            &mut links,
            &mut memo,
        )?;
    }
    if let Some(epoch) = env.get("SOURCE_DATE_EPOCH") {
        for target in resolved.targets.values_mut() {
            target
                .args
                .entry("SOURCE_DATE_EPOCH".to_owned())
                .or_insert_with(|| Some(epoch.clone()));
        }
    }
    Ok(resolved)
}

/// Adds every requested name to the printed `default` group, creating it when no `default`
/// group was expanded; `default` itself is skipped once that group exists.
// Compat: buildx ReadTargets (bake/bake.go): the check for an existing `default` group is made
// per name, so a defined `default` group gains the other requested names (`bake local
// default` prints `default` with `local` among its members), and a target named `default`
// requested after another name is left out of the group created for that name.
fn add_requested_to_default(groups: &mut BTreeMap<String, Group>, requested: &[String]) {
    for name in requested {
        if name == "default" && groups.contains_key("default") {
            continue;
        }
        groups
            .entry("default".to_owned())
            .or_insert_with(|| Group {
                name: "default".to_owned(),
                description: None,
                targets: Vec::new(),
            })
            .targets
            .push(name.clone());
    }
    if let Some(default) = groups.get_mut("default") {
        default.targets.sort();
        default.targets.dedup();
    }
}

/// The walk over `target:` links: the chain being followed and the targets whose links are
/// all loaded.
#[derive(Default)]
struct Links {
    /// Targets on the current path, to report cycles.
    path: Vec<String>,
    /// Targets whose whole link tree loaded without error. A depth-first walk that finished
    /// a target cannot reach the current path from it without having reported the cycle
    /// already, so walking it again finds nothing new: skipping it keeps chains where each
    /// target links every earlier one linear instead of exponential.
    loaded: HashSet<String>,
}

/// Resolves `target:<name>` named contexts, adding linked targets that were not requested
/// with a `cacheonly` output.
// Compat: buildx Config.loadLinks (bake/bake.go), which walks a linked target again for
// every path to it; the result is the same when each is walked once.
fn load_links(
    config: &Config,
    name: &str,
    overrides: &Overrides,
    resolved: &mut Resolved,
    links: &mut Links,
    memo: &mut Memo,
) -> Result<(), Diagnostic> {
    if links.loaded.contains(name) {
        return Ok(());
    }
    let Some(target) = resolved.targets.get(name) else {
        links.path.push(name.to_owned());
        return Ok(());
    };
    let linked_names: Vec<String> = target
        .contexts
        .values()
        .flatten()
        .filter_map(|value| value.strip_prefix("target:"))
        .map(str::to_owned)
        .collect();
    if linked_names.is_empty() {
        return Ok(());
    }
    let platforms = target.platforms.clone().unwrap_or_default();
    links.path.push(name.to_owned());
    for linked in &linked_names {
        let linked = linked.as_str();
        if linked == name {
            return Err(Diagnostic::new(
                "bake::link",
                format!("target `{name}` cannot link to itself"),
            )
            .help("a `target:` context must name another target"));
        }
        if links.path.iter().any(|v| v == linked) {
            return Err(Diagnostic::new(
                "bake::cycle",
                format!("infinite loop from `{name}` to `{linked}` through `target:` contexts"),
            ));
        }
        if !resolved.targets.contains_key(linked) {
            let mut dependency = config.resolve_final(linked, overrides, memo).map_err(|d| {
                Diagnostic::new(
                    "bake::link",
                    format!("target `{name}` links to unknown target `{linked}`"),
                )
                .maybe_help(d.help)
            })?;
            dependency.output = Some(vec![ExportEntry {
                kind: "cacheonly".to_owned(),
                ..ExportEntry::default()
            }]);
            resolved.targets.insert(linked.to_owned(), dependency);
        }
        load_links(config, linked, overrides, resolved, links, memo)?;
        let dependency = &resolved.targets[linked];
        let linked_platforms = dependency.platforms.as_deref().unwrap_or_default();
        if platforms.len() > 1 && linked_platforms.len() > 1 {
            let missing: Vec<&String> = platforms
                .iter()
                .filter(|p| !linked_platforms.contains(p))
                .collect();
            if !missing.is_empty() {
                let missing: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                return Err(Diagnostic::new(
                    "bake::link",
                    format!(
                        "target `{linked}` can't be used by `{name}` because it is missing platforms {}",
                        missing.join(", ")
                    ),
                ));
            }
        }
    }
    links.path.pop();
    links.loaded.insert(name.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(name: &str) -> Target {
        Target {
            name: name.to_owned(),
            ..Target::default()
        }
    }

    fn config() -> Config {
        let mut app = target("app");
        app.inherits = vec!["base".into()];
        app.contexts.insert("b".into(), Some("target:base".into()));
        let mut base = target("base");
        base.tags = Some(vec!["base:1".into()]);
        Config::new(
            vec![base, app],
            vec![Group {
                name: "all".into(),
                description: None,
                targets: vec!["app".into(), "base".into()],
            }],
        )
    }

    #[test]
    fn contexts_are_cleaned_unless_remote() {
        assert_eq!(clean_context("cwd://./x"), "x");
        assert_eq!(
            clean_context("https://github.com/a/b.git#main"),
            "https://github.com/a/b.git#main"
        );
    }

    #[test]
    fn linked_targets_become_cacheonly() {
        let resolved = resolve(&config(), &["app".into()], &[], &BTreeMap::new()).unwrap();
        let base = &resolved.targets["base"];
        assert_eq!(base.output.as_ref().unwrap()[0].kind, "cacheonly");
        assert_eq!(resolved.targets["app"].tags, Some(vec!["base:1".into()]));
        assert_eq!(resolved.groups["default"].targets, ["app"]);
    }

    #[test]
    fn requested_groups_are_kept_and_default_lists_requests() {
        let resolved = resolve(&config(), &["all".into()], &[], &BTreeMap::new()).unwrap();
        assert!(resolved.groups.contains_key("all"));
        assert_eq!(resolved.groups["default"].targets, ["all"]);
        assert!(
            resolved.targets["base"].output.is_none(),
            "requested, so not cacheonly"
        );
    }

    #[test]
    fn a_defined_default_group_gains_the_other_requested_names() {
        let mut groups = BTreeMap::from([(
            "default".to_owned(),
            Group {
                name: "default".into(),
                description: None,
                targets: vec!["web".into()],
            },
        )]);
        add_requested_to_default(&mut groups, &["local".into(), "default".into()]);
        assert_eq!(groups["default"].targets, ["local", "web"]);
    }

    #[test]
    fn a_default_target_requested_after_another_name_is_left_out() {
        let mut groups = BTreeMap::new();
        add_requested_to_default(&mut groups, &["app".into(), "default".into()]);
        assert_eq!(groups["default"].targets, ["app"]);
        let mut groups = BTreeMap::new();
        add_requested_to_default(&mut groups, &["default".into(), "app".into()]);
        assert_eq!(groups["default"].targets, ["app", "default"]);
    }

    #[test]
    fn a_group_member_named_like_its_group_stands_for_the_target() {
        let mut config = config();
        config.targets.push(target("all"));
        config.groups[0].targets.push("all".into());
        let resolved = resolve(&config, &["all".into()], &[], &BTreeMap::new()).unwrap();
        assert!(resolved.targets.contains_key("all"));
    }

    #[test]
    fn self_links_and_unknown_targets_are_errors() {
        let mut config = config();
        config.targets[0]
            .contexts
            .insert("me".into(), Some("target:base".into()));
        assert!(resolve(&config, &["base".into()], &[], &BTreeMap::new()).is_err());
        assert!(resolve(&config, &["nope".into()], &[], &BTreeMap::new()).is_err());
    }

    #[test]
    fn source_date_epoch_is_added_to_args() {
        let env = BTreeMap::from([("SOURCE_DATE_EPOCH".to_owned(), "0".to_owned())]);
        let resolved = resolve(&config(), &["base".into()], &[], &env).unwrap();
        assert_eq!(
            resolved.targets["base"].args["SOURCE_DATE_EPOCH"].as_deref(),
            Some("0")
        );
    }

    #[test]
    fn overrides_reach_children_through_inherits() {
        let sets = vec!["base.args.X=1".to_owned()];
        let resolved = resolve(&config(), &["app".into()], &sets, &BTreeMap::new()).unwrap();
        assert_eq!(resolved.targets["app"].args["X"].as_deref(), Some("1"));
    }

    #[test]
    fn glob_requests_expand_over_targets_and_groups() {
        let resolved = resolve(&config(), &["a*".into()], &[], &BTreeMap::new()).unwrap();
        assert_eq!(resolved.groups["default"].targets, ["all", "app"]);
        assert!(resolve(&config(), &["z*".into()], &[], &BTreeMap::new()).is_err());
    }
}
