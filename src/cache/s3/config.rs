//! The options of `type=s3` and where its region and credentials come from: the entry's
//! attributes first, then the AWS environment and shared config files, the order BuildKit's
//! AWS SDK reads them in. Part of `cache::s3`; pure apart from reading the two config files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::cache::remote::{RemoteError, Result};

/// Looks up an environment variable (the process environment in `bake`, a table in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Static AWS credentials: an access key, its secret and an optional session token.
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// `AWS_ACCESS_KEY_ID` / `access_key_id`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY` / `secret_access_key`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN` / `session_token`, for temporary credentials.
    pub session_token: Option<String>,
    /// Where they were found, for messages (`the cache entry`, `AWS_ACCESS_KEY_ID`, a profile).
    pub origin: String,
}

impl std::fmt::Debug for StaticCredentials {
    // The secret and token never reach a log or an error message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// The checked options of one `type=s3` cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Options {
    /// The bucket (`bucket`, else `AWS_BUCKET`).
    pub bucket: String,
    /// The region (`region`, `AWS_REGION`, the profile's `region`; `us-east-1` for a custom endpoint).
    pub region: String,
    /// Manifest names: exports write each, imports read the first that exists (`name`,
    /// `;`-separated; `buildkit`).
    pub names: Vec<String>,
    /// Prefix of every object key (`prefix`, empty by default).
    pub prefix: String,
    /// Prefix of blob keys after `prefix` (`blobs_prefix`, default `blobs/`).
    pub blobs_prefix: String,
    /// Prefix of manifest keys after `prefix` (`manifests_prefix`, default `manifests/`).
    pub manifests_prefix: String,
    /// A non-AWS endpoint such as MinIO or a local test server (`endpoint_url`).
    pub endpoint_url: Option<String>,
    /// Addresses the bucket in the URL path instead of the host name (`use_path_style`).
    pub use_path_style: bool,
    /// How many blobs and parts upload at once (`upload_parallelism`, default 4).
    pub upload_parallelism: usize,
    /// A blob older than this is copied onto itself on export so bucket lifecycle rules keep
    /// it (`touch_refresh`, default 24h).
    pub touch_refresh: Duration,
    /// Static credentials when the entry or the environment gives them; otherwise the web
    /// identity, container and instance-metadata providers are asked.
    pub credentials: Option<StaticCredentials>,
}

/// The attributes `type=s3` reads; any other one is an error naming it.
const KNOWN: &[&str] = &[
    "bucket",
    "region",
    "name",
    "prefix",
    "blobs_prefix",
    "manifests_prefix",
    "endpoint_url",
    "use_path_style",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "upload_parallelism",
    "touch_refresh",
];

impl S3Options {
    /// Checks the attributes of a `type=s3` entry and fills in what the AWS environment gives.
    ///
    /// # Errors
    ///
    /// An unknown attribute, a missing bucket or region, a malformed number, boolean or
    /// duration, or only half of a key pair.
    // Compat: buildkit s3 getConfig (cache/remotecache/s3/s3.go): defaults, `;`-separated names,
    // AWS_BUCKET / AWS_REGION fallbacks.
    pub fn from_attrs(attrs: &BTreeMap<String, String>, env: EnvLookup<'_>) -> Result<Self> {
        crate::cache::remote::check_attributes("s3", attrs, KNOWN)?;
        let attr = |key: &str| attrs.get(key).filter(|value| !value.is_empty()).cloned();
        let bucket = attr("bucket")
            .or_else(|| env("AWS_BUCKET"))
            .ok_or_else(|| {
                RemoteError::message("s3 cache: `bucket` is not set (set bucket= or AWS_BUCKET)")
            })?;
        let endpoint_url = attr("endpoint_url");
        let profile = Profile::load(env);
        let region = attr("region")
            .or_else(|| env("AWS_REGION").filter(|r| !r.is_empty()))
            .or_else(|| profile.get("region"))
            .or_else(|| endpoint_url.as_ref().map(|_| "us-east-1".to_owned()))
            .ok_or_else(|| {
                RemoteError::message(format!(
                    "s3 cache for bucket `{bucket}`: no region (set region=, AWS_REGION or `region` in the AWS config file)"
                ))
            })?;
        let names = attr("name").map_or_else(
            || vec!["buildkit".to_owned()],
            |names| names.split(';').map(str::to_owned).collect(),
        );
        let upload_parallelism = match attr("upload_parallelism") {
            None => 4,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    RemoteError::message(format!(
                        "s3 cache: upload_parallelism `{text}` is not a positive integer"
                    ))
                })?,
        };
        let touch_refresh = match attr("touch_refresh") {
            None => Duration::from_secs(24 * 3600),
            Some(text) => parse_go_duration(&text).ok_or_else(|| {
                RemoteError::message(format!(
                    "s3 cache: touch_refresh `{text}` is not a duration (e.g. `24h`, `90m`)"
                ))
            })?,
        };
        let use_path_style = match attr("use_path_style") {
            None => false,
            Some(text) => parse_go_bool(&text).ok_or_else(|| {
                RemoteError::message(format!(
                    "s3 cache: use_path_style `{text}` is not a boolean"
                ))
            })?,
        };
        Ok(Self {
            credentials: credentials(attrs, env, &profile)?,
            bucket,
            region,
            names,
            prefix: attr("prefix").unwrap_or_default(),
            blobs_prefix: attr("blobs_prefix").unwrap_or_else(|| "blobs/".to_owned()),
            manifests_prefix: attr("manifests_prefix").unwrap_or_else(|| "manifests/".to_owned()),
            endpoint_url,
            use_path_style,
            upload_parallelism,
            touch_refresh,
        })
    }
}

/// Static credentials from the entry, then `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, then
/// the selected profile; `None` leaves the other providers to the S3 client.
fn credentials(
    attrs: &BTreeMap<String, String>,
    env: EnvLookup<'_>,
    profile: &Profile,
) -> Result<Option<StaticCredentials>> {
    let attr = |key: &str| attrs.get(key).filter(|value| !value.is_empty()).cloned();
    let sources = [
        (
            "the cache entry's access_key_id".to_owned(),
            attr("access_key_id"),
            attr("secret_access_key"),
            attr("session_token"),
        ),
        (
            "AWS_ACCESS_KEY_ID".to_owned(),
            env("AWS_ACCESS_KEY_ID").filter(|v| !v.is_empty()),
            env("AWS_SECRET_ACCESS_KEY").filter(|v| !v.is_empty()),
            env("AWS_SESSION_TOKEN").filter(|v| !v.is_empty()),
        ),
        (
            format!("AWS profile `{}`", profile.name),
            profile.get("aws_access_key_id"),
            profile.get("aws_secret_access_key"),
            profile.get("aws_session_token"),
        ),
    ];
    for (origin, key, secret, token) in sources {
        match (key, secret) {
            (Some(access_key_id), Some(secret_access_key)) => {
                return Ok(Some(StaticCredentials {
                    access_key_id,
                    secret_access_key,
                    session_token: token,
                    origin,
                }));
            }
            (None, None) => {}
            _ => {
                return Err(RemoteError::message(format!(
                    "s3 cache: {origin} gives only one of the access key id and the secret access key"
                )));
            }
        }
    }
    Ok(None)
}

/// One profile of the shared AWS files: `credentials` entries win over `config` entries.
#[derive(Debug, Default)]
struct Profile {
    name: String,
    values: BTreeMap<String, String>,
}

impl Profile {
    /// Reads the profile `AWS_PROFILE` (else `default`) from `AWS_SHARED_CREDENTIALS_FILE`
    /// (else `~/.aws/credentials`) and `AWS_CONFIG_FILE` (else `~/.aws/config`); missing
    /// files give an empty profile.
    fn load(env: EnvLookup<'_>) -> Self {
        let name = env("AWS_PROFILE")
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let home = env("HOME").map(PathBuf::from);
        let file = |variable: &str, default: &str| {
            env(variable)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| home.join(".aws").join(default)))
                .and_then(|path| std::fs::read_to_string(path).ok())
                .unwrap_or_default()
        };
        let mut values = BTreeMap::new();
        // The config file names sections `[profile x]`, except `[default]`.
        let config_section = if name == "default" {
            "default".to_owned()
        } else {
            format!("profile {name}")
        };
        values.extend(ini_section(
            &file("AWS_CONFIG_FILE", "config"),
            &config_section,
        ));
        values.extend(ini_section(
            &file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            &name,
        ));
        Self { name, values }
    }

    fn get(&self, key: &str) -> Option<String> {
        self.values.get(key).filter(|v| !v.is_empty()).cloned()
    }
}

/// The `key = value` lines of section `[section]` of an INI text (`#` and `;` comments).
fn ini_section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = header.split_whitespace().collect::<Vec<_>>().join(" ") == section;
            continue;
        }
        if inside && let Some((key, value)) = line.split_once('=') {
            values.insert(key.trim().to_lowercase(), value.trim().to_owned());
        }
    }
    values
}

/// Parses a Go duration (`24h`, `1h30m`, `1.5s`, `300ms`).
// Compat: Go time.ParseDuration, which BuildKit uses for `touch_refresh` and gha `timeout`.
pub(crate) fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total).ok()
}

/// Parses a boolean the way Go's `strconv.ParseBool` does.
pub(crate) fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn defaults_follow_buildkit() {
        let env = env_of(&[]);
        let options =
            S3Options::from_attrs(&attrs(&[("bucket", "b"), ("region", "eu-west-1")]), &env)
                .unwrap();
        assert_eq!(options.names, ["buildkit"]);
        assert_eq!(options.blobs_prefix, "blobs/");
        assert_eq!(options.manifests_prefix, "manifests/");
        assert_eq!(options.prefix, "");
        assert_eq!(options.upload_parallelism, 4);
        assert_eq!(options.touch_refresh, Duration::from_secs(86400));
        assert!(!options.use_path_style);
        assert!(options.credentials.is_none());
    }

    #[test]
    fn names_split_on_semicolons_and_bucket_region_come_from_env() {
        let env = env_of(&[("AWS_BUCKET", "envbucket"), ("AWS_REGION", "ap-south-1")]);
        let options = S3Options::from_attrs(&attrs(&[("name", "main;pr-12")]), &env).unwrap();
        assert_eq!(options.bucket, "envbucket");
        assert_eq!(options.region, "ap-south-1");
        assert_eq!(options.names, ["main", "pr-12"]);
    }

    #[test]
    fn missing_bucket_region_and_bad_values_are_errors() {
        let env = env_of(&[]);
        let error = S3Options::from_attrs(&attrs(&[]), &env).unwrap_err();
        assert!(error.to_string().contains("`bucket` is not set"), "{error}");
        let error = S3Options::from_attrs(&attrs(&[("bucket", "b")]), &env).unwrap_err();
        assert!(
            error.to_string().contains("bucket `b`: no region"),
            "{error}"
        );
        let with = |key, value| {
            S3Options::from_attrs(
                &attrs(&[("bucket", "b"), ("region", "r"), (key, value)]),
                &env,
            )
            .unwrap_err()
            .to_string()
        };
        assert!(with("upload_parallelism", "0").contains("positive integer"));
        assert!(with("touch_refresh", "soon").contains("not a duration"));
        assert!(with("use_path_style", "yes").contains("not a boolean"));
        assert!(with("bucket_typo", "x").contains("unknown attribute `bucket_typo`"));
        assert!(with("access_key_id", "AKIA").contains("only one of"));
    }

    #[test]
    fn custom_endpoint_defaults_the_region() {
        let env = env_of(&[]);
        let options = S3Options::from_attrs(
            &attrs(&[("bucket", "b"), ("endpoint_url", "http://127.0.0.1:9000")]),
            &env,
        )
        .unwrap();
        assert_eq!(options.region, "us-east-1");
    }

    #[test]
    fn credentials_prefer_attributes_then_environment_then_profile() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".aws")).unwrap();
        std::fs::write(
            home.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = s0\n\n\
             # comment\n[ci]\naws_access_key_id=CIKEY\naws_secret_access_key=s1\naws_session_token=t1\n",
        )
        .unwrap();
        std::fs::write(
            home.path().join(".aws/config"),
            "[default]\nregion = us-west-2\n[profile ci]\nregion = eu-central-1\n",
        )
        .unwrap();
        let home_text = home.path().to_str().unwrap();
        let base = [("bucket", "b")];

        let env = env_of(&[("HOME", home_text)]);
        let options = S3Options::from_attrs(&attrs(&base), &env).unwrap();
        let credentials = options.credentials.unwrap();
        assert_eq!(credentials.access_key_id, "DEFAULTKEY");
        assert_eq!(options.region, "us-west-2");

        let env = env_of(&[("HOME", home_text), ("AWS_PROFILE", "ci")]);
        let options = S3Options::from_attrs(&attrs(&base), &env).unwrap();
        let credentials = options.credentials.unwrap();
        assert_eq!(credentials.access_key_id, "CIKEY");
        assert_eq!(credentials.session_token.as_deref(), Some("t1"));
        assert_eq!(credentials.origin, "AWS profile `ci`");
        assert_eq!(options.region, "eu-central-1");

        let env = env_of(&[
            ("HOME", home_text),
            ("AWS_ACCESS_KEY_ID", "ENVKEY"),
            ("AWS_SECRET_ACCESS_KEY", "s2"),
        ]);
        let options = S3Options::from_attrs(&attrs(&base), &env).unwrap();
        assert_eq!(options.credentials.unwrap().access_key_id, "ENVKEY");

        let options = S3Options::from_attrs(
            &attrs(&[
                ("bucket", "b"),
                ("access_key_id", "ATTRKEY"),
                ("secret_access_key", "s3"),
            ]),
            &env,
        )
        .unwrap();
        let credentials = options.credentials.unwrap();
        assert_eq!(credentials.access_key_id, "ATTRKEY");
        assert!(!format!("{credentials:?}").contains("s3"));
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("24h"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("5d"), None);
    }
}
