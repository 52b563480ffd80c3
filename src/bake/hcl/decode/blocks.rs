//! `target` and `group` blocks: matrix expansion into named instances, lazy per-attribute
//! evaluation (what `target.<name>.<attr>` reads), and decoding into targets and groups.

use crate::bake::fasthash::{FastMap as HashMap, FastSet as HashSet};
use std::rc::Rc;

use hcl::Value;

use super::{Instance, NAME_PATTERN, Parser, dedupe, is_valid_name};
use crate::bake::error::{Diagnostic, Error, closest};
use crate::bake::hcl::body::{Attr, Block};
use crate::bake::hcl::eval::{EvalError, EvalResult, Locals};
use crate::bake::hcl::fields::{self, TARGET_ATTRIBUTES};
use crate::bake::hcl::types;
use crate::bake::model::{Group, Target};

/// Targets, groups, and the warnings met while decoding them.
pub(super) type DecodedBlocks = (Vec<Target>, Vec<Group>, Vec<Diagnostic>);

impl<'a> Parser<'a> {
    /// Expands every target and group block into instances (one per matrix cell) with
    /// their final names.
    pub(super) fn expand(&mut self, blocks: &[&'a Block]) -> Result<(), Error> {
        let mut problems = Vec::new();
        for block in blocks {
            match self.instances_of(block) {
                Ok(instances) => {
                    for instance in instances {
                        self.by_name
                            .entry((block.kind.as_str(), instance.name.clone()))
                            .or_default()
                            .push(self.instances.len());
                        self.instances.push(instance);
                    }
                }
                Err(error) => problems.push(self.diagnostic(error)),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error {
                diagnostics: problems,
            })
        }
    }

    pub(super) fn instances_of(&self, block: &'a Block) -> EvalResult<Vec<Instance<'a>>> {
        let label = block.label();
        let label_error = |message: String| {
            EvalError::new(message)
                .code("bake::name")
                .at(block.file, block.label_span.clone())
        };
        if !is_valid_name(label) {
            return Err(label_error(format!(
                "invalid {} name `{label}`: only `{NAME_PATTERN}` are allowed",
                block.kind
            )));
        }
        let matrix = block.attr("matrix");
        let name_attr = block.attr("name");
        if let (true, Some(attr)) = (block.kind == "group", matrix.or(name_attr)) {
            return Err(
                EvalError::new(format!("`{}` is not allowed in a group", attr.name))
                    .code("bake::matrix")
                    .at(attr.file, attr.span.clone()),
            );
        }
        let cells = match matrix {
            Some(attr) => self.matrix_cells(attr)?,
            None => vec![Vec::new()],
        };
        if let (Some(attr), None) = (name_attr, matrix) {
            return Err(EvalError::new("`name` requires `matrix`")
                .code("bake::matrix")
                .at(attr.file, attr.span.clone()));
        }
        let mut instances = Vec::new();
        let mut seen = HashSet::default();
        for cell in cells {
            let name = match name_attr {
                Some(attr) => {
                    let locals = Locals::borrowed(&cell);
                    let value = self.eval_in(attr, &locals)?;
                    types::value_to_string(&value).ok_or_else(|| {
                        EvalError::new("`name` must be a string")
                            .code("bake::name")
                            .at(attr.file, attr.span.clone())
                    })?
                }
                None => label.to_owned(),
            };
            if !is_valid_name(&name) {
                return Err(label_error(format!(
                    "invalid target name `{name}`: only `{NAME_PATTERN}` are allowed"
                ))
                .with_help("use `sanitize()` in the `name` expression"));
            }
            if !seen.insert(name.clone()) {
                return Err(label_error(format!("duplicate name `{name}`"))
                    .with_help("include every matrix key in the `name` template"));
            }
            instances.push(Instance { block, cell, name });
        }
        Ok(instances)
    }

    /// Returns the cartesian product of the matrix: keys sorted, the first key varying
    /// fastest, as buildx's expansion orders it.
    pub(super) fn matrix_cells(&self, attr: &Attr) -> EvalResult<Vec<Vec<(String, Value)>>> {
        let value = self.eval_in(attr, &Locals::default())?;
        let Value::Object(axes) = value else {
            return Err(EvalError::new("`matrix` must be a map of lists")
                .code("bake::matrix")
                .at(attr.file, attr.span.clone()));
        };
        let mut keys: Vec<&String> = axes.keys().collect();
        keys.sort();
        let mut cells: Vec<Vec<(String, Value)>> = vec![Vec::new()];
        for key in keys {
            let Value::Array(values) = &axes[key] else {
                return Err(EvalError::new(format!(
                    "matrix values must be a list; `{key}` is not"
                ))
                .code("bake::matrix")
                .at(attr.file, attr.span.clone()));
            };
            let mut next = Vec::with_capacity(cells.len() * values.len());
            for value in values {
                for cell in &cells {
                    let mut cell = cell.clone();
                    cell.push((key.clone(), value.clone()));
                    next.push(cell);
                }
            }
            cells = next;
        }
        Ok(cells)
    }

    /// Evaluates one attribute of one instance, once: the value is shared between the
    /// decoded target and every `target.<name>.<attr>` reference to it.
    pub(super) fn attr_value(&self, index: usize, name: &str) -> Option<EvalResult<Rc<Value>>> {
        let instance = &self.instances[index];
        let block: &'a Block = instance.block;
        let attr: &'a Attr = block.attr(name)?;
        let key = (index, attr.name.as_str());
        if let Some(value) = self.attr_values.borrow().get(&key) {
            return Some(Ok(Rc::clone(value)));
        }
        if !self.attr_resolving.borrow_mut().insert(key) {
            return Some(Err(EvalError::new(format!(
                "reference cycle not allowed for `{}.{}.{name}`",
                instance.block.kind, instance.name
            ))
            .code("bake::cycle")
            .at(attr.file, attr.span.clone())));
        }
        let locals = Locals::borrowed(&instance.cell);
        let result = self.eval_in(attr, &locals).map(Rc::new);
        self.attr_resolving.borrow_mut().remove(&key);
        if let Ok(value) = &result {
            self.attr_values.borrow_mut().insert(key, Rc::clone(value));
        }
        Some(result)
    }

    /// Warns about an attribute no target has, which is then ignored.
    // Compat: buildx reads a target block with the attributes it knows and leaves the rest
    // out, so files written for other tools (`provenance = false`) still load.
    fn unknown_attribute(&self, attr: &Attr) -> Diagnostic {
        let candidates: Vec<String> = TARGET_ATTRIBUTES.iter().map(|s| (*s).to_owned()).collect();
        let help = match closest(&attr.name, &candidates) {
            Some(similar) => format!("did you mean `{similar}`?"),
            None => {
                "remove it, or see the list of target attributes in the book's reference".to_owned()
            }
        };
        Diagnostic::warning(
            "bake::unknown_attribute",
            format!("unknown target attribute `{}` is ignored", attr.name),
        )
        .at(&self.files[attr.file], attr.span.clone())
        .label("not a target attribute")
        .help(help)
    }

    pub(super) fn decode_blocks(&self) -> Result<DecodedBlocks, Error> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut targets: Vec<Target> = Vec::new();
        let mut target_index: HashMap<String, usize> = HashMap::default();
        let mut groups: Vec<Group> = Vec::new();
        for (index, instance) in self.instances.iter().enumerate() {
            let block = instance.block;
            if block.kind == "group" {
                let mut group = Group {
                    name: instance.name.clone(),
                    ..Group::default()
                };
                for attr in &block.attrs {
                    let result = self
                        .attr_value(index, &attr.name)
                        .unwrap_or_else(|| Ok(Rc::new(Value::Null)))
                        .and_then(|value| {
                            fields::set_group_field(&mut group, &attr.name, &value).map_err(|m| {
                                EvalError::new(m)
                                    .code("bake::attribute")
                                    .at(attr.file, attr.span.clone())
                            })
                        });
                    if let Err(error) = result {
                        problems.push(self.diagnostic(error));
                    }
                }
                match groups.iter_mut().find(|g| g.name == group.name) {
                    Some(existing) => *existing = group,
                    None => groups.push(group),
                }
                continue;
            }
            let mut target = Target {
                name: instance.name.clone(),
                ..Target::default()
            };
            for attr in &block.attrs {
                if matches!(attr.name.as_str(), "matrix" | "name") {
                    continue;
                }
                if !TARGET_ATTRIBUTES.contains(&attr.name.as_str()) {
                    warnings.push(self.unknown_attribute(attr));
                    continue;
                }
                let result = self
                    .attr_value(index, &attr.name)
                    .unwrap_or_else(|| Ok(Rc::new(Value::Null)))
                    .and_then(|value| {
                        fields::set_target_field(&mut target, &attr.name, &value).map_err(|m| {
                            EvalError::new(format!("invalid `{}`: {m}", attr.name))
                                .code("bake::attribute")
                                .at(attr.file, attr.span.clone())
                        })
                    });
                if let Err(error) = result {
                    problems.push(self.diagnostic(error));
                }
            }
            match target_index.get(&target.name) {
                Some(&position) => targets[position].merge(&target),
                None => {
                    target_index.insert(target.name.clone(), targets.len());
                    targets.push(target);
                }
            }
        }
        // A matrix adds a group named after the block label holding the generated names.
        let mut renamed: Vec<(String, Vec<String>)> = Vec::new();
        for instance in self.instances.iter().filter(|i| i.block.kind == "target") {
            let label = instance.block.label();
            if instance.block.attr("matrix").is_none() {
                continue;
            }
            match renamed.iter_mut().find(|(l, _)| l == label) {
                Some((_, names)) if !names.contains(&instance.name) => {
                    names.push(instance.name.clone())
                }
                Some(_) => {}
                None => renamed.push((label.to_owned(), vec![instance.name.clone()])),
            }
        }
        for (label, names) in renamed {
            if names.len() == 1 && names[0] == label {
                continue;
            }
            groups.push(Group {
                name: label,
                description: None,
                targets: names,
            });
        }
        if problems.is_empty() {
            Ok((targets, groups, dedupe(warnings)))
        } else {
            Err(Error {
                diagnostics: dedupe(problems),
            })
        }
    }
}
