//! Compose `extends`: a service starts from another one (in the same file or in `file:`),
//! merged under its own keys the way compose-go merges override files.

use std::collections::BTreeMap;

use crate::bake::error::Error;

use crate::bake::compose::merge::merge_service;
use crate::bake::compose::paths;
use crate::bake::compose::project::{Loader, take};
use crate::bake::compose::yaml::{Node, Value, error};

impl Loader {
    /// Applies `extends` to every service of one document. `dir` is where the document's
    /// relative `extends.file` paths start.
    // Compat: compose-go loader.ApplyExtends.
    pub(super) fn apply_extends(
        &mut self,
        document: &mut Node,
        env: &BTreeMap<String, String>,
        dir: &str,
    ) -> Result<(), Error> {
        let Some(services) = services_mut(document) else {
            return Ok(());
        };
        let names: Vec<String> = match &services.value {
            Value::Map(entries) => entries.iter().map(|(k, _)| k.name.clone()).collect(),
            _ => return Ok(()),
        };
        for name in names {
            self.extend(services, &name, env, dir, &mut Vec::new())?;
        }
        Ok(())
    }

    /// Resolves the `extends` chain of service `name` in `services`, stores the merged
    /// service there and returns it. `trail` holds the services on the way, for cycles.
    // Compat: compose-go loader.applyServiceExtends.
    fn extend(
        &mut self,
        services: &mut Node,
        name: &str,
        env: &BTreeMap<String, String>,
        dir: &str,
        trail: &mut Vec<String>,
    ) -> Result<Option<Node>, Error> {
        let Some(service) = find_service(services, name).cloned() else {
            return Ok(None);
        };
        let Some(extends) = service.get("extends").filter(|e| !e.is_null()) else {
            return Ok(Some(service));
        };
        let (reference, file) = self.reference(extends)?;
        let link = format!("`{name}` in `{}`", self.files[service.file].name);
        if trail.contains(&link) {
            let chain = [trail.as_slice(), std::slice::from_ref(&link)]
                .concat()
                .join(" extends ");
            let message = format!("circular `extends`: {chain}");
            return Err(error(&self.files, extends, message).into());
        }
        trail.push(link);
        let parent = match file {
            Some(file) => {
                let path = paths::absolute(dir, &file, self.home.as_deref());
                let index = self
                    .read(&path)
                    .map_err(|message| error(&self.files, extends, message))?;
                let mut other = self.parse(index, env)?;
                // The other file's paths are relative to it; make them relative to `dir`.
                let relative = paths::dir(&paths::absolute("", &file, self.home.as_deref()));
                paths::resolve(&mut other, &relative, self.home.as_deref());
                let found = services_mut(&mut other)
                    .is_some_and(|services| find_service(services, &reference).is_some());
                if !found {
                    let message = format!(
                        "cannot extend service `{name}`: service `{reference}` not found in `{path}`"
                    );
                    return Err(error(&self.files, extends, message).into());
                }
                let Some(other_services) = services_mut(&mut other) else {
                    return Ok(Some(service));
                };
                self.extend(other_services, &reference, env, dir, trail)?
            }
            None => {
                if find_service(services, &reference).is_none() {
                    let message =
                        format!("cannot extend service `{name}`: service `{reference}` not found");
                    return Err(error(&self.files, extends, message).into());
                }
                self.extend(services, &reference, env, dir, trail)?
            }
        };
        trail.pop();
        let Some(mut merged) = parent else {
            return Ok(Some(service));
        };
        merge_service(&mut merged, service);
        take(&mut merged, "extends");
        if let Value::Map(entries) = &mut services.value
            && let Some((_, slot)) = entries.iter_mut().find(|(k, _)| k.name == name)
        {
            *slot = merged.clone();
        }
        Ok(Some(merged))
    }

    /// `extends: name` or `extends: {service: name, file: path}`.
    fn reference(&self, extends: &Node) -> Result<(String, Option<String>), Error> {
        let text = |node: Option<&Node>| node.and_then(Node::scalar_text).filter(|t| !t.is_empty());
        match &extends.value {
            Value::Str(reference) => Ok((reference.clone(), None)),
            Value::Map(_) => {
                let Some(reference) = text(extends.get("service")) else {
                    let message = "`extends` needs a `service`";
                    return Err(error(&self.files, extends, message).into());
                };
                Ok((reference, text(extends.get("file"))))
            }
            _ => {
                let message = format!(
                    "`extends` must be a service name or a mapping, not {}",
                    extends.kind()
                );
                Err(error(&self.files, extends, message).into())
            }
        }
    }
}

fn services_mut(document: &mut Node) -> Option<&mut Node> {
    match &mut document.value {
        Value::Map(entries) => entries
            .iter_mut()
            .find(|(k, _)| k.name == "services")
            .map(|(_, v)| v)
            .filter(|v| v.entries().is_some()),
        _ => None,
    }
}

fn find_service<'a>(services: &'a Node, name: &str) -> Option<&'a Node> {
    services
        .get(name)
        .filter(|s| s.entries().is_some() || s.is_null())
}
