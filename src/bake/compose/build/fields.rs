//! Decoders for the Compose `build` keys that need more than a string or a list: caches,
//! `shm_size`, `ulimits`, `extra_hosts`, `ssh`, `secrets`, `sbom`/`provenance`.

use std::collections::BTreeMap;

use super::{Cx, Result, sort_ssh, unbracket};
use crate::bake::compose::yaml::{Node, Value};
use crate::bake::compose::yaml::{error, key_error};
use crate::bake::model::NullableMap;
use crate::buildflags::{Attest, CacheEntry, Secret, Ssh};

impl Cx<'_> {
    pub(super) fn caches(&self, node: &Node, what: &str) -> Result<Vec<CacheEntry>> {
        let texts = self.list(node, what)?;
        let items = match &node.value {
            Value::Seq(items) => items.as_slice(),
            _ => &[],
        };
        let mut out = Vec::new();
        for (index, text) in texts.iter().enumerate() {
            let at = items.get(index).unwrap_or(node);
            let entries = CacheEntry::parse_list(text)
                .map_err(|err| self.err(at, format!("invalid `{what}`: {err}")))?;
            for entry in entries {
                if !out.contains(&entry) {
                    out.push(entry);
                }
            }
        }
        Ok(out)
    }

    /// `shm_size` as bytes (a number or `2gb`-style text), shown as buildx shows it.
    // Compat: buildx ParseCompose (dockeropts.MemBytes.String).
    pub(super) fn shm_size(&self, node: &Node) -> Result<Option<String>> {
        let bytes = match &node.value {
            Value::Null => return Ok(None),
            Value::Int(n) => *n,
            Value::Str(text) => ram_in_bytes(text)
                .ok_or_else(|| self.err(node, format!("invalid `shm_size` `{text}`")))?,
            _ => {
                return Err(self.err(
                    node,
                    format!("`shm_size` must be a size, not {}", node.kind()),
                ));
            }
        };
        if bytes <= 0 {
            return Ok(None);
        }
        // Precision loss only affects sizes beyond 2^53 bytes, shown with 4 digits anyway.
        #[allow(
            clippy::cast_precision_loss,
            reason = "shown with 4 significant digits"
        )]
        Ok(Some(bytes_size(bytes as f64)))
    }

    // Compat: buildx ParseCompose ulimits + go-units ParseUlimit.
    pub(super) fn ulimits(&self, node: &Node) -> Result<Vec<String>> {
        const NAMES: &[&str] = &crate::buildflags::ULIMIT_NAMES;
        let Some(entries) = node.entries() else {
            if node.is_null() {
                return Ok(Vec::new());
            }
            return Err(self.err(
                node,
                format!("`ulimits` must be a mapping, not {}", node.kind()),
            ));
        };
        let int = |n: &Node, what: &str| -> Result<i128> {
            match &n.value {
                Value::Int(i) => Ok(*i),
                Value::Str(s) => s
                    .trim()
                    .parse()
                    .map_err(|_| self.err(n, format!("`{what}` must be an integer, not `{s}`"))),
                _ => Err(self.err(n, format!("`{what}` must be an integer, not {}", n.kind()))),
            }
        };
        let mut out = Vec::new();
        for (key, value) in entries {
            let name = &key.name;
            if !NAMES.contains(&name.as_str()) {
                return Err(Box::new(key_error(
                    self.files,
                    value.file,
                    key,
                    format!("invalid ulimit type `{name}`"),
                )));
            }
            let (soft, hard) = match (value.get("soft"), value.get("hard")) {
                (Some(soft), Some(hard)) => (int(soft, "soft")?, int(hard, "hard")?),
                _ => {
                    let single = int(value, name)?;
                    (single, single)
                }
            };
            if soft > hard {
                return Err(self.err(
                    value,
                    format!("ulimit soft limit must be less than or equal to hard limit: `{soft}` > `{hard}`"),
                ));
            }
            out.push(format!("{name}={soft}:{hard}"));
        }
        // Go iterates the map in random order; sorting keeps --print stable.
        out.sort();
        Ok(out)
    }

    /// `host:ip` / `host=ip` list or mapping; several IPs of one host are joined by `,`.
    // Compat: compose-go types.NewHostsList, buildx ParseCompose extraHosts.
    pub(super) fn extra_hosts(&self, node: &Node) -> Result<NullableMap> {
        let mut hosts: BTreeMap<String, Vec<String>> = BTreeMap::new();
        match &node.value {
            Value::Null => {}
            Value::Seq(items) => {
                for item in items {
                    let text = item.scalar_text().ok_or_else(|| {
                        self.err(
                            item,
                            format!("`extra_hosts` items must be strings, not {}", item.kind()),
                        )
                    })?;
                    let (host, ips) = text
                        .split_once('=')
                        .or_else(|| text.split_once(':'))
                        .ok_or_else(|| {
                            self.err(
                                item,
                                format!("invalid additional host, missing IP: `{text}`"),
                            )
                        })?;
                    hosts
                        .entry(host.to_owned())
                        .or_default()
                        .extend(ips.split(',').map(unbracket));
                }
            }
            Value::Map(entries) => {
                for (key, value) in entries {
                    let ips: Vec<String> = match &value.value {
                        Value::Seq(_) => self.list(value, "extra_hosts")?,
                        Value::Null => vec![String::new()],
                        _ => vec![value.scalar_text().unwrap_or_default()],
                    };
                    hosts
                        .entry(key.name.clone())
                        .or_default()
                        .extend(ips.iter().map(|ip| unbracket(ip)));
                }
            }
            _ => {
                return Err(self.err(
                    node,
                    format!(
                        "`extra_hosts` must be a mapping or a list, not {}",
                        node.kind()
                    ),
                ));
            }
        }
        Ok(hosts
            .into_iter()
            .map(|(host, ips)| (host, Some(ips.join(","))))
            .collect())
    }

    /// `id=path` / `default` list or `id: path` mapping, sorted.
    // Compat: buildx composeToBuildkitSSH.
    pub(super) fn ssh(&self, node: &Node) -> Result<Vec<Ssh>> {
        let mut out: Vec<Ssh> = self
            .keyed(node, "ssh", &['='])?
            .into_iter()
            .map(|(id, path)| Ssh {
                id,
                paths: path.into_iter().filter(|p| !p.is_empty()).collect(),
            })
            .collect();
        sort_ssh(&mut out);
        Ok(out)
    }

    /// Service-level `secrets` referring to top-level `secrets` (`file` or `environment`).
    // Compat: buildx composeToBuildkitSecret.
    pub(super) fn secrets(&self, service: &str, node: &Node) -> Result<Vec<Secret>> {
        let Value::Seq(items) = &node.value else {
            if node.is_null() {
                return Ok(Vec::new());
            }
            return Err(self.err(
                node,
                format!("`secrets` must be a list, not {}", node.kind()),
            ));
        };
        let mut out = Vec::new();
        for item in items {
            let source = match item.get("source") {
                Some(source) => self.string(source, "source")?,
                None => self.string(item, "secrets")?,
            }
            .ok_or_else(|| self.err(item, "build secret has no `source`"))?;
            let Some(defined) = self.secrets.and_then(|s| s.get(&source)) else {
                let message =
                    format!("service `{service}` refers to undefined build secret `{source}`");
                return Err(Box::new(
                    error(self.files, item, message)
                        .help(format!("declare `{source}` under the top-level `secrets`")),
                ));
            };
            if let Some(external) = defined.get("external")
                && self.boolean(external, "external")? == Some(true)
            {
                let name = match defined.get("name") {
                    Some(name) => self.string(name, "name")?,
                    None => None,
                };
                return Err(self.err(
                    item,
                    format!("unsupported external secret `{}`", name.unwrap_or(source)),
                ));
            }
            let field = |key: &str| -> Result<String> {
                match defined.get(key) {
                    Some(value) => Ok(self.string(value, key)?.unwrap_or_default()),
                    None => Ok(String::new()),
                }
            };
            out.push(Secret {
                id: source,
                src: field("file")?,
                env: field("environment")?,
            });
        }
        Ok(out)
    }

    /// `sbom` / `provenance`: a boolean switches it on or off, text is its attributes.
    // Compat: buildx buildflags.CanonicalizeAttest.
    pub(super) fn attest(&self, node: &Node, kind: &str) -> Result<Option<Attest>> {
        let Some(text) = self.string(node, kind)? else {
            return Ok(None);
        };
        let spec = match crate::buildflags::parse_bool(&text) {
            Some(enabled) => format!("type={kind},disabled={}", !enabled),
            None => format!("type={kind},{text}"),
        };
        Attest::parse(&spec)
            .map(Some)
            .map_err(|err| self.err(node, format!("invalid `{kind}`: {err}")))
    }
}

// Compat: go-units RAMInBytes.
fn ram_in_bytes(text: &str) -> Option<i128> {
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(number_end);
    if number.is_empty() || !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let size: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_lowercase();
    let mut rest = unit.as_str();
    let mut multiplier = 1f64;
    if let Some((index, _)) = ["k", "m", "g", "t", "p"]
        .iter()
        .enumerate()
        .find(|(_, p)| rest.starts_with(**p))
    {
        multiplier = 1024f64.powi(i32::try_from(index).ok()? + 1);
        rest = &rest[1..];
    }
    rest = rest.strip_prefix('i').unwrap_or(rest);
    rest = rest.strip_prefix('b').unwrap_or(rest);
    if !rest.is_empty() {
        return None;
    }
    #[allow(
        clippy::cast_possible_truncation,
        reason = "Go truncates with int64(size)"
    )]
    Some((size * multiplier) as i128)
}

/// Formats bytes as go-units `BytesSize` does: binary units, `%.4g`.
// Compat: go-units BytesSize / CustomSize.
fn bytes_size(mut size: f64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut unit = 0;
    while size >= 1024.0 && unit < UNITS.len() - 1 {
        size /= 1024.0;
        unit += 1;
    }
    format!("{}{}", go_g4(size), UNITS[unit])
}

/// Go's `%.4g`: four significant digits, trailing zeros dropped.
fn go_g4(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let sci = format!("{value:.3e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..4).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim(mantissa), exp.abs());
    }
    let precision = usize::try_from(3 - exp).unwrap_or(0);
    trim(&format!("{value:.precision$}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("2gb"), Some(2 * 1024 * 1024 * 1024));
        assert_eq!(ram_in_bytes("128m"), Some(128 * 1024 * 1024));
        assert_eq!(ram_in_bytes("1.5 KiB"), Some(1536));
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert_eq!(ram_in_bytes("12x"), None);
        assert_eq!(ram_in_bytes("gb"), None);
        assert_eq!(bytes_size(134_217_728.0), "128MiB");
        assert_eq!(bytes_size(2_147_483_648.0), "2GiB");
        assert_eq!(bytes_size(1536.0), "1.5KiB");
        assert_eq!(bytes_size(100.0), "100B");
        assert_eq!(bytes_size(1_000_000.0), "976.6KiB");
        assert_eq!(bytes_size(1023.9 * 1024.0), "1024KiB");
    }
}
