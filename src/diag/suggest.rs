//! "Did you mean" hints: the known name nearest to a misspelt one by edit distance.

/// Returns the candidate nearest to `name` by [`edit_distance`], among those at most
/// `max_distance(candidate)` edits away; the earliest candidate wins ties. With
/// `ignore_case`, both sides are compared in lower case. Each caller picks its own limit,
/// as each tool it mirrors (buildx, BuildKit, buildkitd) has its own.
pub fn suggest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    ignore_case: bool,
    max_distance: impl Fn(&str) -> usize,
) -> Option<&'a str> {
    let name = if ignore_case {
        name.to_lowercase()
    } else {
        name.to_owned()
    };
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = if ignore_case {
            edit_distance(&name, &candidate.to_lowercase())
        } else {
            edit_distance(&name, candidate)
        };
        if distance <= max_distance(candidate) && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// The Levenshtein distance between `a` and `b`, counted in chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(row[j]).min(above)
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_inserts_deletes_and_substitutions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("tag", "tags"), 1);
        assert_eq!(edit_distance("héllo", "hello"), 1);
    }

    #[test]
    fn nearest_candidate_within_the_limit_wins() {
        let names = ["tags", "target", "context"];
        assert_eq!(suggest("tag", names, false, |_| 1), Some("tags"));
        assert_eq!(suggest("xyz", names, false, |_| 2), None);
        assert_eq!(suggest("contxet", names, false, |_| 1), None);
        assert_eq!(suggest("contxet", names, false, |_| 2), Some("context"));
    }

    #[test]
    fn ties_go_to_the_first_candidate_and_case_can_be_ignored() {
        assert_eq!(suggest("ab", ["ax", "ay"], false, |_| 1), Some("ax"));
        assert_eq!(suggest("RUM", ["RUN", "COPY"], true, |_| 2), Some("RUN"));
        assert_eq!(suggest("RUM", ["run"], false, |_| 2), None);
        assert_eq!(suggest("RUM", ["run"], true, |_| 2), Some("run"));
    }
}
