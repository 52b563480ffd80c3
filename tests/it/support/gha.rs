//! A GitHub Actions cache service on 127.0.0.1, written from the documented protocol: the
//! version 1 REST service (`_apis/artifactcache`: lookup, reserve, `PATCH` ranges, commit),
//! the version 2 Twirp service (`github.actions.results.api.v1.CacheService`) and the Azure
//! Blob side of its signed URLs (Put Blob, Put Block, Put Block List, Get Blob). Blobs are
//! files on disk. Like GitHub's, it checks the bearer token, scopes entries to the token's
//! write scope, lets a token read every scope it lists, and never lets an entry change.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};

/// A runtime token (a JWT, unsigned: the service only compares it) granting `scopes`
/// (`(ref, permission)`, 1 = read, 2 = write).
pub(crate) fn token(scopes: &[(&str, u32)]) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<Value> = scopes
        .iter()
        .map(|(scope, permission)| json!({"Scope": scope, "Permission": permission}))
        .collect();
    let claims = json!({
        "ac": serde_json::to_string(&access).unwrap(),
        "exp": now + 3600,
        "nbf": now - 60,
    });
    format!(
        "{}.{}.unsigned",
        engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
        engine.encode(claims.to_string())
    )
}

struct Entry {
    id: u64,
    key: String,
    version: String,
    scope: String,
    committed: bool,
    signature: String,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    requests: Vec<String>,
}

struct Shared {
    state: Mutex<State>,
    tokens: BTreeMap<String, Vec<(String, u32)>>,
    dir: PathBuf,
    base: String,
}

/// A running cache service; stops on drop.
pub(crate) struct GhaServer {
    /// `http://127.0.0.1:PORT/`, the service URL for both versions.
    pub(crate) url: String,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl GhaServer {
    /// Starts a service accepting exactly `tokens` (made by [`token`]).
    pub(crate) fn start(tokens: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let base = format!("http://{address}/");
        let tokens = tokens
            .iter()
            .map(|token| ((*token).to_owned(), scopes_of(token)))
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            tokens,
            dir: dir.path().to_owned(),
            base: base.clone(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (accept_shared, accept_stop) = (Arc::clone(&shared), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = Arc::clone(&accept_shared);
                std::thread::spawn(move || serve(&shared, stream));
            }
        });
        Self {
            url: base,
            shared,
            stop,
            _dir: dir,
        }
    }

    /// The keys of committed entries, in the order they were reserved.
    pub(crate) fn keys(&self) -> Vec<String> {
        let state = self.shared.state.lock().unwrap();
        state
            .entries
            .iter()
            .filter(|e| e.committed)
            .map(|e| e.key.clone())
            .collect()
    }

    /// Reserves `key` in `scope` as a writer that never finishes would (a crashed job).
    pub(crate) fn hold(&self, key: &str, scope: &str) {
        let mut state = self.shared.state.lock().unwrap();
        let id = state.entries.len() as u64 + 1;
        state.entries.push(Entry {
            id,
            key: key.to_owned(),
            version: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                b"|go-actionscache-1.0",
            )),
            scope: scope.to_owned(),
            committed: false,
            signature: "held".to_owned(),
        });
    }

    /// How many requests so far had a `METHOD path` line containing `needle`.
    pub(crate) fn count(&self, needle: &str) -> usize {
        let state = self.shared.state.lock().unwrap();
        state.requests.iter().filter(|r| r.contains(needle)).count()
    }
}

impl Drop for GhaServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://").trim_end_matches('/'));
    }
}

fn scopes_of(token: &str) -> Vec<(String, u32)> {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let access: Vec<Value> = serde_json::from_str(claims["ac"].as_str().unwrap()).unwrap();
    access
        .iter()
        .map(|a| {
            (
                a["Scope"].as_str().unwrap().to_owned(),
                a["Permission"].as_u64().unwrap() as u32,
            )
        })
        .collect()
}

struct Request {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

fn json_response(status: u16, value: &Value) -> Response {
    Response {
        status,
        content_type: "application/json",
        body: value.to_string().into_bytes(),
    }
}

fn empty(status: u16) -> Response {
    Response {
        status,
        content_type: "text/plain",
        body: Vec::new(),
    }
}

fn serve(shared: &Shared, stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let Some(request) = read_request(&mut reader) else {
        return;
    };
    shared
        .state
        .lock()
        .unwrap()
        .requests
        .push(format!("{} {}", request.method, request.path));
    let response = route(shared, &request);
    let mut stream = stream;
    let reason = if response.status < 400 { "OK" } else { "Error" };
    let _ = write!(
        stream,
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.content_type,
        response.body.len()
    );
    let _ = stream.write_all(&response.body);
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_lowercase(), value.trim().to_owned());
        }
    }
    let mut body = Vec::new();
    if let Some(length) = headers.get("content-length") {
        body.resize(length.parse().ok()?, 0);
        reader.read_exact(&mut body).ok()?;
    } else if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect();
    Some(Request {
        method,
        path: path.to_owned(),
        query,
        headers,
        body,
    })
}

fn decode(text: &str) -> String {
    percent_encoding::percent_decode_str(&text.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn route(shared: &Shared, request: &Request) -> Response {
    if let Some(rest) = request.path.strip_prefix("/blob/") {
        return blob(shared, request, rest);
    }
    if let Some(rest) = request.path.strip_prefix("/download/") {
        return blob(shared, request, rest);
    }
    let twirp = request.path.starts_with("/twirp/");
    let scopes = request
        .headers
        .get("authorization")
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| shared.tokens.get(token));
    let Some(scopes) = scopes else {
        return if twirp {
            json_response(
                401,
                &json!({"code": "unauthenticated", "msg": "invalid token"}),
            )
        } else {
            json_response(401, &json!({"message": "Unauthorized: invalid token"}))
        };
    };
    if let Some(method) = request
        .path
        .strip_prefix("/twirp/github.actions.results.api.v1.CacheService/")
    {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        return v2(shared, scopes, method, &body);
    }
    if let Some(rest) = request.path.strip_prefix("/_apis/artifactcache/") {
        return v1(shared, scopes, request, rest);
    }
    empty(404)
}

/// The scope a token writes to: the last one with the write bit.
fn write_scope(scopes: &[(String, u32)]) -> Option<String> {
    scopes
        .iter()
        .rev()
        .find(|(_, p)| p & 2 != 0)
        .map(|(s, _)| s.clone())
}

/// The committed entry for the first key that matches exactly, else by prefix (newest).
fn lookup<'a>(
    state: &'a State,
    scopes: &[(String, u32)],
    keys: &[String],
    version: &str,
) -> Option<&'a Entry> {
    let readable = |e: &&Entry| {
        e.committed && e.version == version && scopes.iter().any(|(s, _)| *s == e.scope)
    };
    for key in keys {
        if let Some(entry) = state
            .entries
            .iter()
            .filter(readable)
            .filter(|e| e.key == *key)
            .max_by_key(|e| e.id)
        {
            return Some(entry);
        }
        if let Some(entry) = state
            .entries
            .iter()
            .filter(readable)
            .filter(|e| e.key.starts_with(key.as_str()))
            .max_by_key(|e| e.id)
        {
            return Some(entry);
        }
    }
    None
}

/// Reserves `key` in the writer's scope; `Err` when it exists in any state.
fn reserve(
    shared: &Shared,
    scopes: &[(String, u32)],
    key: &str,
    version: &str,
) -> Result<(u64, String), &'static str> {
    let scope = write_scope(scopes).ok_or("forbidden")?;
    let mut state = shared.state.lock().unwrap();
    if state
        .entries
        .iter()
        .any(|e| e.key == key && e.version == version && e.scope == scope)
    {
        return Err("exists");
    }
    let id = state.entries.len() as u64 + 1;
    let signature = format!("{:x}", rand_number(id));
    state.entries.push(Entry {
        id,
        key: key.to_owned(),
        version: version.to_owned(),
        scope,
        committed: false,
        signature: signature.clone(),
    });
    Ok((id, signature))
}

fn rand_number(seed: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos ^ (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))) | 1
}

fn blob_path(shared: &Shared, id: u64) -> PathBuf {
    shared.dir.join(format!("{id}.blob"))
}

/// Commits the reserved entry `id` when its file holds `size` bytes.
fn commit(shared: &Shared, id: u64, size: u64) -> Result<(), String> {
    let on_disk = std::fs::metadata(blob_path(shared, id)).map_or(0, |m| m.len());
    if on_disk != size {
        return Err(format!("size {size} given, {on_disk} uploaded"));
    }
    let mut state = shared.state.lock().unwrap();
    let entry = state
        .entries
        .iter_mut()
        .find(|e| e.id == id && !e.committed)
        .ok_or("no such reserved entry")?;
    entry.committed = true;
    Ok(())
}

fn v1(shared: &Shared, scopes: &[(String, u32)], request: &Request, rest: &str) -> Response {
    match (request.method.as_str(), rest) {
        ("GET", "cache") => {
            let keys: Vec<String> = request.query["keys"]
                .split(',')
                .map(str::to_owned)
                .collect();
            let state = shared.state.lock().unwrap();
            match lookup(&state, scopes, &keys, &request.query["version"]) {
                None => empty(204),
                Some(entry) => json_response(
                    200,
                    &json!({
                        "cacheKey": entry.key,
                        "scope": entry.scope,
                        "archiveLocation": format!("{}download/{}?sig={}", shared.base, entry.id, entry.signature),
                    }),
                ),
            }
        }
        ("POST", "caches") => {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let (key, version) = (
                body["key"].as_str().unwrap_or(""),
                body["version"].as_str().unwrap_or(""),
            );
            match reserve(shared, scopes, key, version) {
                Ok((id, _)) => json_response(201, &json!({"cacheId": id})),
                Err("exists") => json_response(
                    409,
                    &json!({
                        "message": format!("Cache already exists. Scope: {}, Key: {key}, Version: {version}", write_scope(scopes).unwrap_or_default()),
                        "typeKey": "ReserveCacheAlreadyExistsException",
                    }),
                ),
                Err(_) => json_response(403, &json!({"message": "token cannot write"})),
            }
        }
        (method, rest) if rest.starts_with("caches/") => {
            let Ok(id) = rest["caches/".len()..].parse::<u64>() else {
                return empty(404);
            };
            if !owned_and_open(shared, scopes, id) {
                return json_response(
                    403,
                    &json!({"message": "not a reserved entry of this scope"}),
                );
            }
            if method == "PATCH" {
                let Some(start) = request
                    .headers
                    .get("content-range")
                    .and_then(|r| r.strip_prefix("bytes "))
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse::<u64>().ok())
                else {
                    return json_response(400, &json!({"message": "no Content-Range"}));
                };
                let mut file = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(blob_path(shared, id))
                    .unwrap();
                file.seek(SeekFrom::Start(start)).unwrap();
                file.write_all(&request.body).unwrap();
                return empty(204);
            }
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            match commit(shared, id, body["size"].as_u64().unwrap_or(u64::MAX)) {
                Ok(()) => empty(204),
                Err(why) => json_response(400, &json!({"message": why})),
            }
        }
        _ => empty(404),
    }
}

fn owned_and_open(shared: &Shared, scopes: &[(String, u32)], id: u64) -> bool {
    let scope = write_scope(scopes);
    let state = shared.state.lock().unwrap();
    state
        .entries
        .iter()
        .any(|e| e.id == id && !e.committed && Some(&e.scope) == scope.as_ref())
}

fn v2(shared: &Shared, scopes: &[(String, u32)], method: &str, body: &Value) -> Response {
    let key = body["key"].as_str().unwrap_or("");
    let version = body["version"].as_str().unwrap_or("");
    match method {
        "CreateCacheEntry" => match reserve(shared, scopes, key, version) {
            Ok((id, signature)) => json_response(
                200,
                &json!({"ok": true, "signed_upload_url": format!("{}blob/{id}?sig={signature}", shared.base)}),
            ),
            Err("exists") => json_response(
                409,
                &json!({"code": "already_exists", "msg": "cache entry with the same key, version, and scope already exists"}),
            ),
            Err(_) => json_response(
                403,
                &json!({"code": "permission_denied", "msg": "token cannot write"}),
            ),
        },
        "FinalizeCacheEntryUpload" => {
            let scope = write_scope(scopes);
            let id = {
                let state = shared.state.lock().unwrap();
                state
                    .entries
                    .iter()
                    .find(|e| {
                        e.key == key
                            && e.version == version
                            && !e.committed
                            && Some(&e.scope) == scope.as_ref()
                    })
                    .map(|e| e.id)
            };
            let Some(id) = id else {
                return json_response(
                    404,
                    &json!({"code": "not_found", "msg": "no reserved entry"}),
                );
            };
            match commit(shared, id, body["size_bytes"].as_u64().unwrap_or(u64::MAX)) {
                Ok(()) => json_response(200, &json!({"ok": true, "entry_id": id.to_string()})),
                Err(why) => json_response(400, &json!({"code": "invalid_argument", "msg": why})),
            }
        }
        "GetCacheEntryDownloadURL" => {
            let mut keys = vec![key.to_owned()];
            keys.extend(
                body["restore_keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_owned)),
            );
            let state = shared.state.lock().unwrap();
            match lookup(&state, scopes, &keys, version) {
                None => json_response(200, &json!({"ok": false})),
                Some(entry) => json_response(
                    200,
                    &json!({
                        "ok": true,
                        "matched_key": entry.key,
                        "signed_download_url": format!("{}blob/{}?sig={}", shared.base, entry.id, entry.signature),
                    }),
                ),
            }
        }
        _ => json_response(404, &json!({"code": "bad_route", "msg": method})),
    }
}

/// The signed-URL side: Azure Blob's Put Blob / Put Block / Put Block List and Get Blob.
fn blob(shared: &Shared, request: &Request, id: &str) -> Response {
    let Ok(id) = id.parse::<u64>() else {
        return empty(404);
    };
    let committed = {
        let state = shared.state.lock().unwrap();
        let Some(entry) = state.entries.iter().find(|e| e.id == id) else {
            return empty(404);
        };
        if request.query.get("sig") != Some(&entry.signature) {
            return empty(403);
        }
        entry.committed
    };
    let path = blob_path(shared, id);
    match request.method.as_str() {
        "GET" if committed => Response {
            status: 200,
            content_type: "application/octet-stream",
            body: std::fs::read(path).unwrap(),
        },
        "GET" => empty(404),
        // Entries never change once committed.
        "PUT" if committed => empty(409),
        "PUT" => match request.query.get("comp").map(String::as_str) {
            Some("block") => {
                let block = hex::encode(request.query["blockid"].as_bytes());
                std::fs::write(
                    shared.dir.join(format!("{id}.block.{block}")),
                    &request.body,
                )
                .unwrap();
                empty(201)
            }
            Some("blocklist") => {
                let text = String::from_utf8_lossy(&request.body).into_owned();
                let mut out = std::fs::File::create(&path).unwrap();
                for part in text.split("<Latest>").skip(1) {
                    let block_id = part.split("</Latest>").next().unwrap();
                    let block = shared
                        .dir
                        .join(format!("{id}.block.{}", hex::encode(block_id.as_bytes())));
                    let Ok(bytes) = std::fs::read(&block) else {
                        return empty(400);
                    };
                    out.write_all(&bytes).unwrap();
                }
                empty(201)
            }
            None if request.headers.get("x-ms-blob-type").map(String::as_str)
                == Some("BlockBlob") =>
            {
                std::fs::write(&path, &request.body).unwrap();
                empty(201)
            }
            _ => empty(400),
        },
        _ => empty(405),
    }
}
