//! mdBook is not installed here, so this checks what it would: every `SUMMARY.md` link and
//! every `{{#include}}` path exists.

use crate::support;

#[test]
fn summary_links_and_includes_exist() {
    let src = support::root().join("book/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let mut pages = Vec::new();
    for part in summary.split("](").skip(1) {
        let link = part.split(')').next().unwrap();
        let path = src.join(link);
        assert!(path.is_file(), "SUMMARY.md links to missing {link}");
        pages.push(path);
    }
    assert!(pages.len() >= 10);
    for page in pages {
        let text = std::fs::read_to_string(&page).unwrap();
        for part in text.split("{{#include ").skip(1) {
            let include = part.split("}}").next().unwrap();
            let path = page.parent().unwrap().join(include);
            assert!(
                path.is_file(),
                "{} includes missing {include}",
                page.display()
            );
        }
    }
}

#[test]
fn every_error_code_is_documented() {
    let errors =
        std::fs::read_to_string(support::root().join("book/src/reference/errors.md")).unwrap();
    let mut missing = Vec::new();
    let mut stack = vec![
        support::root().join("src/bake"),
        support::root().join("src/cli"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for part in text.split("\"bake::").skip(1) {
                let code: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if part[code.len()..].starts_with('"')
                    && !errors.contains(&format!("`bake::{code}`"))
                {
                    missing.push(code);
                }
            }
        }
    }
    assert!(missing.is_empty(), "undocumented codes: {missing:?}");
}
