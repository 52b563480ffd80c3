//! Which node of a builder builds which platform of a target: each platform goes to a node
//! that lists it, a node may take several, and a platform no node lists goes to the first
//! node (which may emulate it). Part of `remote`.
//!
//! Pure: the lists of platforms per node come in, the shares go out, so the rules are
//! unit-tested without a daemon.

use crate::platform::Platform;

/// The platforms of one target that one node builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Share {
    /// The node's index in the builder.
    pub(crate) node: usize,
    /// Its platforms, in the target's order (empty: the target names none).
    pub(crate) platforms: Vec<Platform>,
}

/// How a node's listed platform is compared with a wanted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matching {
    /// Only the same platform (after normalising): the nodes' configured platforms.
    Strict,
    /// Any platform the listed one runs (`arm64` runs `arm/v7`, `amd64` runs `386`),
    /// preferring the closest: once the nodes' workers have been asked.
    Compatible,
}

/// The platforms a machine of `platform` runs, best first.
// Compat: containerd platforms.platformVector (what platforms.Only matches).
fn runs(platform: &Platform) -> Vec<Platform> {
    let platform = platform.clone().normalize();
    let with = |architecture: &str, variant: Option<String>| Platform {
        os: platform.os.clone(),
        architecture: architecture.to_owned(),
        variant,
    };
    let level = |variant: Option<&str>, default: usize| {
        variant
            .and_then(|v| v.strip_prefix('v'))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let arm = |from: usize| {
        (5..=from)
            .rev()
            .map(|n| with("arm", Some(format!("v{n}"))))
            .collect::<Vec<_>>()
    };
    match platform.architecture.as_str() {
        "amd64" => {
            let mut out: Vec<Platform> = (1..=level(platform.variant.as_deref(), 1))
                .rev()
                .map(|n| with("amd64", (n > 1).then(|| format!("v{n}"))))
                .collect();
            out.push(with("386", None));
            out
        }
        "arm64" => {
            let mut out = vec![platform.clone()];
            out.extend(arm(8));
            out
        }
        "arm" => arm(level(platform.variant.as_deref(), 7)),
        _ => vec![platform],
    }
}

/// The node that builds `wanted`, or `None` when no node lists it.
// Compat: buildx nodeResolver.get: the first node whose platform matches, unless a later
// one's platform is a closer match.
fn pick(wanted: &Platform, listed: &[Vec<Platform>], matching: Matching) -> Option<usize> {
    let wanted = wanted.clone().normalize();
    let mut best: Option<(usize, Platform)> = None;
    for (index, platforms) in listed.iter().enumerate() {
        for platform in platforms {
            let order = match matching {
                Matching::Strict => vec![platform.clone().normalize()],
                Matching::Compatible => runs(platform),
            };
            let Some(rank) = order.iter().position(|p| *p == wanted) else {
                continue;
            };
            let closer = match &best {
                None => true,
                Some((_, chosen)) => {
                    let chosen = chosen.clone().normalize();
                    order
                        .iter()
                        .position(|p| *p == chosen)
                        .is_none_or(|chosen_rank| rank < chosen_rank)
                }
            };
            if closer {
                best = Some((index, platform.clone()));
            }
        }
    }
    best.map(|(index, _)| index)
}

/// Splits `wanted` over nodes whose platforms are `listed`: one share per node used, in the
/// order of the first platform each takes. Also says whether every platform found a node.
// Compat: buildx nodeResolver.resolve + recombineNodes.
pub(crate) fn split(
    wanted: &[Platform],
    listed: &[Vec<Platform>],
    matching: Matching,
) -> (Vec<Share>, bool) {
    if wanted.is_empty() {
        return (
            vec![Share {
                node: 0,
                platforms: Vec::new(),
            }],
            true,
        );
    }
    let mut shares: Vec<Share> = Vec::new();
    let mut perfect = true;
    for platform in wanted {
        let node = pick(platform, listed, matching).unwrap_or_else(|| {
            perfect = false;
            0
        });
        match shares.iter_mut().find(|share| share.node == node) {
            Some(share) => share.platforms.push(platform.clone()),
            None => shares.push(Share {
                node,
                platforms: vec![platform.clone()],
            }),
        }
    }
    (shares, perfect)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn platforms(list: &[&str]) -> Vec<Platform> {
        list.iter().map(|p| p.parse().unwrap()).collect()
    }

    fn shares(result: &(Vec<Share>, bool)) -> Vec<(usize, String)> {
        result
            .0
            .iter()
            .map(|share| {
                let names: Vec<String> = share.platforms.iter().map(ToString::to_string).collect();
                (share.node, names.join(","))
            })
            .collect()
    }

    #[test]
    fn each_platform_goes_to_the_first_node_listing_it() {
        let listed = vec![
            platforms(&["linux/amd64"]),
            platforms(&["linux/arm64"]),
            platforms(&["linux/arm64", "linux/riscv64"]),
        ];
        let wanted = platforms(&["linux/arm64", "linux/amd64", "linux/riscv64"]);
        let result = split(&wanted, &listed, Matching::Strict);
        assert_eq!(
            shares(&result),
            vec![
                (1, "linux/arm64".to_owned()),
                (0, "linux/amd64".to_owned()),
                (2, "linux/riscv64".to_owned()),
            ]
        );
        assert!(result.1);
    }

    #[test]
    fn a_node_takes_every_platform_it_lists_and_the_unlisted_go_to_the_first() {
        let listed = vec![
            platforms(&["linux/amd64"]),
            platforms(&["linux/arm64", "linux/arm/v7"]),
        ];
        let wanted = platforms(&["linux/arm64", "linux/s390x", "linux/arm/v7"]);
        let result = split(&wanted, &listed, Matching::Strict);
        assert_eq!(
            shares(&result),
            vec![
                (1, "linux/arm64,linux/arm/v7".to_owned()),
                (0, "linux/s390x".to_owned()),
            ]
        );
        assert!(!result.1, "s390x is listed nowhere");
    }

    #[test]
    fn variants_are_compared_after_normalising() {
        // `arm64/v8` is `arm64`, `arm` is `arm/v7`, `x86_64` is `amd64`.
        let listed = vec![
            platforms(&["linux/amd64"]),
            platforms(&["linux/arm64/v8"]),
            platforms(&["linux/arm"]),
        ];
        let wanted = platforms(&["linux/arm64", "linux/arm/v7", "linux/x86_64"]);
        let result = split(&wanted, &listed, Matching::Strict);
        assert_eq!(
            shares(&result),
            vec![
                (1, "linux/arm64".to_owned()),
                (2, "linux/arm/v7".to_owned()),
                (0, "linux/amd64".to_owned()),
            ]
        );
        // Strictly, an arm64 node does not list arm/v7, nor an arm/v7 node arm/v6.
        let listed = vec![platforms(&["linux/amd64"]), platforms(&["linux/arm64"])];
        let result = split(&platforms(&["linux/arm/v7"]), &listed, Matching::Strict);
        assert_eq!(shares(&result), vec![(0, "linux/arm/v7".to_owned())]);
        assert!(!result.1);
    }

    #[test]
    fn compatible_matching_prefers_the_closest_node() {
        // An arm64 node runs arm/v7; a node listing arm/v7 itself is closer.
        let listed = vec![
            platforms(&["linux/amd64"]),
            platforms(&["linux/arm64"]),
            platforms(&["linux/arm/v7"]),
        ];
        let result = split(
            &platforms(&["linux/arm/v7", "linux/arm64", "linux/386"]),
            &listed,
            Matching::Compatible,
        );
        assert_eq!(
            shares(&result),
            vec![
                (2, "linux/arm/v7".to_owned()),
                (1, "linux/arm64".to_owned()),
                (0, "linux/386".to_owned()),
            ]
        );
        assert!(result.1);
        // Without the arm/v7 node the arm64 one takes it; an arm/v7 node never runs arm64.
        let listed = vec![platforms(&["linux/arm/v7"]), platforms(&["linux/arm64"])];
        let result = split(
            &platforms(&["linux/arm/v6", "linux/arm64"]),
            &listed,
            Matching::Compatible,
        );
        assert_eq!(
            shares(&result),
            vec![
                (0, "linux/arm/v6".to_owned()),
                (1, "linux/arm64".to_owned())
            ]
        );
    }

    #[test]
    fn no_platform_means_the_first_node() {
        let listed = vec![platforms(&["linux/arm64"]), platforms(&["linux/amd64"])];
        let result = split(&[], &listed, Matching::Strict);
        assert_eq!(
            result.0,
            vec![Share {
                node: 0,
                platforms: Vec::new()
            }]
        );
        assert!(result.1);
    }
}
