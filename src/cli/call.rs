//! `--call=check|outline|targets[,format=json][,ignorestatus=true]`: runs the frontend
//! method for every resolved target and prints the results as buildx does.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::bake::{self, Diagnostic, Error, Resolved};
use crate::diag::SourceFile;
use crate::engine::{self, CallResult};
use crate::frontend::dockerfile::{CheckReport, Outline, Targets};
use crate::plan::{BuildRequest, Call};

/// A parsed `--call` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallSpec {
    /// The method name as the `call` attribute holds it (`check` becomes `lint`).
    pub(crate) name: String,
    /// Print JSON instead of text.
    pub(crate) json: bool,
    /// Exit 0 even when checks report problems.
    pub(crate) ignore_status: bool,
}

/// Parses `check,format=json,ignorestatus=true`.
// Compat: buildx buildflags.ParseCallFunc.
pub(crate) fn parse(value: &str) -> Result<CallSpec, Error> {
    let invalid = |message: String| {
        Error::one(
            Diagnostic::new("bake::call", message)
                .help("use `--call=check`, `--call=outline,format=json` or `--call=targets`"),
        )
    };
    let mut spec = CallSpec {
        name: String::new(),
        json: false,
        ignore_status: false,
    };
    for field in value.split(',') {
        match field.split_once('=') {
            None => spec.name = field.trim().to_owned(),
            Some(("format", "json")) => spec.json = true,
            Some(("format", "text")) => spec.json = false,
            Some(("ignorestatus", flag)) => {
                spec.ignore_status = crate::buildflags::parse_bool(flag)
                    .ok_or_else(|| invalid(format!("invalid `ignorestatus` value `{flag}`")))?;
            }
            Some(_) => return Err(invalid(format!("invalid `--call` option `{field}`"))),
        }
    }
    spec.name = match Call::parse(&spec.name) {
        Some(Call::Build) => "build".to_owned(),
        Some(Call::Lint) => "lint".to_owned(),
        Some(Call::Outline) => "outline".to_owned(),
        Some(Call::Targets) => "targets".to_owned(),
        None => return Err(invalid(format!("unknown `--call` method `{}`", spec.name))),
    };
    Ok(spec)
}

/// The key a method's result is printed under.
fn method_key(call: Call) -> &'static str {
    match call {
        Call::Lint | Call::Build => "check",
        Call::Outline => "outline",
        Call::Targets => "targets",
    }
}

/// Runs the call for every target (its first platform) and returns the text to print and
/// whether any result failed.
pub(crate) fn run(
    resolved: &Resolved,
    requests: &[BuildRequest],
    spec: &CallSpec,
) -> Result<(String, bool), miette::Report> {
    let mut first: BTreeMap<&str, &BuildRequest> = BTreeMap::new();
    for request in requests.iter().filter(|r| r.call != Call::Build) {
        first.entry(request.target.as_str()).or_insert(request);
    }
    let mut failed = false;
    let mut json = BTreeMap::new();
    let mut text = String::new();
    for (name, request) in &first {
        let result = engine::call(request)?;
        failed |= result.failed();
        if spec.json {
            let value = serde_json::to_value(&result).map_err(|e| miette::miette!("{e}"))?;
            json.insert(
                (*name).to_owned(),
                (method_key(request.call).to_owned(), value),
            );
            continue;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        let _ = writeln!(text, "{name}");
        if let Some(description) = resolved
            .targets
            .get(*name)
            .and_then(|t| t.description.as_deref())
        {
            let _ = writeln!(text, "{description}");
        }
        text.push('\n');
        match &result {
            CallResult::Check(report) => {
                text.push_str(&render_check(report, &engine::dockerfile(request)?))
            }
            CallResult::Outline(outline) => text.push_str(&render_outline(outline)),
            CallResult::Targets(targets) => text.push_str(&render_targets(targets)),
        }
        text.push('\n');
    }
    let output = if spec.json {
        bake::print::print_calls(resolved, &json)
    } else {
        text
    };
    Ok((output, failed && !spec.ignore_status))
}

/// Lays out rows as Go's `text/tabwriter` does with a minimum width of 0 and `padding`
/// spaces: every cell but a row's last is padded to its column's widest cell plus `padding`
/// (so a trailing empty cell leaves the padding behind, as in Go).
fn tabwrite(rows: &[Vec<String>], padding: usize) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (column, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            widths[column] = widths[column].max(cell.chars().count() + padding);
        }
    }
    let mut out = String::new();
    for row in rows {
        for (column, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if column + 1 < row.len() {
                let fill = widths[column].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', fill));
            }
        }
        out.push('\n');
    }
    out
}

/// Renders `--call=outline` as BuildKit's text form: the stage, then tables of build args,
/// secrets and SSH mounts, each followed by a blank line.
// Compat: buildkit frontend/subrequests/outline PrintOutline.
fn render_outline(outline: &Outline) -> String {
    let mut out = String::new();
    let row = |cells: &[&str]| cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
    if !outline.name.is_empty() || !outline.description.is_empty() {
        let name = if outline.name.is_empty() {
            "(default)"
        } else {
            &outline.name
        };
        let mut rows = vec![row(&["TARGET:", name])];
        if !outline.description.is_empty() {
            rows.push(row(&["DESCRIPTION:", &outline.description]));
        }
        out.push_str(&tabwrite(&rows, 1));
        out.push('\n');
    }
    if !outline.args.is_empty() {
        let mut rows = vec![row(&["BUILD ARG", "VALUE", "DESCRIPTION"])];
        for arg in &outline.args {
            rows.push(row(&[&arg.name, &arg.value, &arg.description]));
        }
        out.push_str(&tabwrite(&rows, 3));
        out.push('\n');
    }
    for (title, mounts) in [("SECRET", &outline.secrets), ("SSH", &outline.ssh)] {
        if mounts.is_empty() {
            continue;
        }
        let mut rows = vec![row(&[title, "REQUIRED"])];
        for mount in mounts {
            rows.push(row(&[
                &mount.name,
                if mount.required { "true" } else { "" },
            ]));
        }
        out.push_str(&tabwrite(&rows, 3));
        out.push('\n');
    }
    out
}

/// Renders `--call=targets` as BuildKit's text table.
// Compat: buildkit frontend/subrequests/targets PrintTargets.
fn render_targets(targets: &Targets) -> String {
    let mut rows = vec![vec!["TARGET".to_owned(), "DESCRIPTION".to_owned()]];
    for target in &targets.targets {
        let name = match (target.name.is_empty(), target.default) {
            (true, true) => "(default)".to_owned(),
            (false, true) => format!("{} (default)", target.name),
            _ => target.name.clone(),
        };
        rows.push(vec![name, target.description.clone()]);
    }
    tabwrite(&rows, 1)
}

/// Renders check findings the way buildx prints them: a summary, then each warning with its
/// rule, URL, description and the Dockerfile lines it points at.
fn render_check(report: &CheckReport, file: &SourceFile) -> String {
    let mut out = String::new();
    // Compat: buildx printResult: with an error and no warnings there is no summary line,
    // only the error.
    match report.warnings.len() {
        0 if report.error.is_some() => {}
        0 => out.push_str("Check complete, no warnings found.\n"),
        1 => out.push_str("Check complete, 1 warning has been found!\n"),
        n => {
            let _ = writeln!(out, "Check complete, {n} warnings have been found!");
        }
    }
    let lines: Vec<&str> = file.text.lines().collect();
    for warning in &report.warnings {
        let _ = writeln!(out, "\nWARNING: {} - {}", warning.rule_name, warning.url);
        let _ = writeln!(out, "{}", warning.detail);
        for range in &warning.location.ranges {
            let (start, end) = (range.start.line, range.end.line);
            let _ = writeln!(out, "{}:{start}\n--------------------", file.name);
            let from = start.saturating_sub(2).max(1);
            let to = (end + 2).min(lines.len());
            for number in from..=to {
                let marker = if (start..=end).contains(&number) {
                    ">>>"
                } else {
                    "   "
                };
                let line = lines.get(number - 1).copied().unwrap_or_default();
                let _ = writeln!(out, " {number:>3} | {marker} {line}");
            }
            out.push_str("--------------------\n");
        }
    }
    if let Some(error) = &report.error {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(out, "ERROR: {}", error.message);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tabwrite_pads_like_go() {
        let rows = vec![
            vec!["TARGET".to_owned(), "DESCRIPTION".to_owned()],
            vec!["build".to_owned(), String::new()],
            vec!["release (default)".to_owned(), "the image".to_owned()],
        ];
        assert_eq!(
            tabwrite(&rows, 1),
            "TARGET            DESCRIPTION\nbuild             \nrelease (default) the image\n"
        );
    }

    #[test]
    fn call_values_parse_like_buildx() {
        let spec = parse("check,format=json").unwrap();
        assert_eq!(
            (spec.name.as_str(), spec.json, spec.ignore_status),
            ("lint", true, false)
        );
        assert!(parse("outline,ignorestatus=true").unwrap().ignore_status);
        assert!(parse("explode").is_err());
        assert!(parse("check,format=xml").is_err());
    }
}
