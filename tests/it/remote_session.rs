//! What a remote build's session serves the engine's BuildKit besides files: secrets
//! (`RUN --mount=type=secret`, read when asked), SSH agents (`RUN --mount=type=ssh`, relayed
//! to a real `ssh-agent`) and registry credentials from `DOCKER_CONFIG` (a `FROM` on a
//! registry behind basic auth). Bad secret and SSH specs fail before anything is sent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use crate::remote_build::{BASE, bake, engine, seed_base, serial, stderr};
use crate::support;
use crate::support::registry::TestRegistry;

/// A project with `dockerfile` and one target whose body is `body`.
fn project(dockerfile: &str, body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::write(
        dir.path().join("docker-bake.hcl"),
        format!("target \"default\" {{\n{body}\n}}\n"),
    )
    .unwrap();
    dir
}

#[test]
fn secrets_reach_run_steps_read_at_call_time_and_stay_out_of_the_layers() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = serial();
    let secrets = tempfile::tempdir().unwrap();
    let token = secrets.path().join("token");
    std::fs::write(&token, "first-secret-value").unwrap();
    // Upper-cased on the way out, so the raw value can be searched for in the image.
    let dir = project(
        &format!(
            "FROM {BASE}\n\
             RUN --mount=type=secret,id=tok tr a-z A-Z < /run/secrets/tok > /tok.txt\n\
             RUN --mount=type=secret,id=envtok tr a-z A-Z < /run/secrets/envtok > /env.txt\n\
             RUN --mount=type=secret,id=absent,required=false ls /run/secrets > /listing.txt || true\n"
        ),
        &format!(
            "  secret = [\"id=tok,src={}\", \"id=envtok,env=BAKE_TEST_TOKEN\"]\n  \
             output = [\"type=local,dest=out\", \"type=docker,dest=image.tar\"]",
            token.display()
        ),
    );
    let env = [("BAKE_TEST_TOKEN", "value-from-the-environment")];
    let allow = format!("--allow=fs.read={}", secrets.path().display());
    let first = bake(dir.path(), &["--builder", "docker://", &allow], &env);
    assert!(first.status.success(), "{}", stderr(&first));
    let out = dir.path().join("out");
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    assert_eq!(read("tok.txt"), "FIRST-SECRET-VALUE");
    assert_eq!(read("env.txt"), "VALUE-FROM-THE-ENVIRONMENT");
    assert!(!out.join("run/secrets/tok").exists());
    // An id the target does not define is NotFound, which `required=false` skips.
    assert!(!read("listing.txt").contains("absent"));
    let image = std::fs::read(dir.path().join("image.tar")).unwrap();
    for raw in ["first-secret-value", "value-from-the-environment"] {
        assert!(
            !image.windows(raw.len()).any(|w| w == raw.as_bytes()),
            "`{raw}` is in the image layers"
        );
    }

    std::fs::write(&token, "second-secret-value").unwrap();
    let second = bake(
        dir.path(),
        &["--builder", "docker://", &allow, "--no-cache"],
        &env,
    );
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(read("tok.txt"), "SECOND-SECRET-VALUE");
}

#[test]
fn a_missing_secret_source_fails_before_the_build_is_sent() {
    if !engine() {
        return;
    }
    let dir = project(
        &format!("FROM {BASE}\nRUN --mount=type=secret,id=tok cat /run/secrets/tok\n"),
        "  secret = [\"id=tok,src=no-such-secret-file\"]",
    );
    let output = bake(dir.path(), &["--builder", "docker://"], &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("target `default`")
            && text.contains("secret `tok`")
            && text.contains("no-such-secret-file"),
        "{text}"
    );
    assert!(!text.contains("[internal]"), "nothing was built: {text}");
}

#[test]
fn an_undefined_required_secret_fails_on_the_daemon_naming_it() {
    if !engine() || !seed_base() {
        return;
    }
    let _serial = serial();
    let dir = project(
        &format!("FROM {BASE}\nRUN --mount=type=secret,id=undefined,required=true true\n"),
        "  secret = [\"id=defined,env=BAKE_TEST_DEFINED\"]",
    );
    let output = bake(
        dir.path(),
        &["--builder", "docker://"],
        &[("BAKE_TEST_DEFINED", "x")],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("secret undefined not found"), "{text}");
}

/// An `ssh-agent` on a socket in `dir`, holding a fresh ed25519 key; killed on drop.
struct Agent {
    child: Child,
    socket: PathBuf,
    public_key: String,
}

impl Agent {
    fn start(dir: &Path) -> Self {
        let socket = dir.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "ssh-agent did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let key = dir.join("id_ed25519");
        let status = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "bake-session-test",
                "-f",
            ])
            .arg(&key)
            .status()
            .unwrap();
        assert!(status.success());
        let agent = Self {
            child,
            socket,
            public_key: std::fs::read_to_string(key.with_extension("pub")).unwrap(),
        };
        assert!(agent.ssh_add(&[key.to_str().unwrap()]).status.success());
        agent
    }

    fn ssh_add(&self, args: &[&str]) -> std::process::Output {
        Command::new("ssh-add")
            .args(args)
            .env("SSH_AUTH_SOCK", &self.socket)
            .output()
            .unwrap()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the host's `ssh-add`, its libraries and the dynamic loader into `tools` (busybox
/// has no agent client): run as `/tools/ld.so --library-path /tools /tools/ssh-add`.
fn copy_ssh_add(tools: &Path) {
    std::fs::create_dir_all(tools).unwrap();
    let binary = support::find_in_path("ssh-add").unwrap();
    std::fs::copy(&binary, tools.join("ssh-add")).unwrap();
    let ldd = Command::new("ldd").arg(&binary).output().unwrap();
    assert!(ldd.status.success());
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        let Some(path) = path.filter(|p| p.starts_with('/')) else {
            continue;
        };
        let name = if path.contains("ld-linux") {
            "ld.so".to_owned()
        } else {
            Path::new(path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        std::fs::copy(path, tools.join(name)).unwrap();
    }
    assert!(tools.join("ld.so").exists(), "no loader in `ldd` output");
}

#[test]
fn ssh_agents_are_forwarded_by_id_and_stay_read_only() {
    if !engine() || !seed_base() {
        return;
    }
    if support::find_in_path("ssh-agent").is_none() || support::find_in_path("ldd").is_none() {
        assert!(std::env::var("CI").is_err(), "CI installs openssh-client");
        support::skip("`ssh-agent` (openssh-client) or `ldd` is missing");
        return;
    }
    let _serial = serial();
    let home = tempfile::tempdir().unwrap();
    let agent = Agent::start(home.path());
    let add = "/tools/ld.so --library-path /tools /tools/ssh-add";
    let dir = project(
        &format!(
            "FROM {BASE}\nCOPY tools /tools\n\
             RUN --mount=type=ssh {add} -L > /default.txt\n\
             RUN --mount=type=ssh,id=deploy {add} -L > /deploy.txt\n\
             RUN --mount=type=ssh {add} -D; echo $? > /delete.txt\n"
        ),
        &format!(
            "  ssh = [\"default\", \"deploy={}\"]\n  output = [\"type=local,dest=out\"]",
            agent.socket.display()
        ),
    );
    copy_ssh_add(&dir.path().join("tools"));
    let socket = agent.socket.display().to_string();
    let allow = format!("--allow=ssh,fs.read={}", home.path().display());
    let output = bake(
        dir.path(),
        &["--builder", "docker://", &allow],
        &[("SSH_AUTH_SOCK", &socket)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let out = dir.path().join("out");
    for name in ["default.txt", "deploy.txt"] {
        assert_eq!(
            std::fs::read_to_string(out.join(name)).unwrap().trim(),
            agent.public_key.trim(),
            "{name}"
        );
    }
    assert_ne!(
        std::fs::read_to_string(out.join("delete.txt"))
            .unwrap()
            .trim(),
        "0",
        "removing keys through the forwarded agent is refused"
    );
    let listed = agent.ssh_add(&["-L"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        agent.public_key.trim(),
        "the host agent still holds the key"
    );
}

#[test]
fn ssh_without_an_agent_fails_before_the_build_is_sent() {
    if !engine() {
        return;
    }
    let dir = project(
        &format!("FROM {BASE}\nRUN --mount=type=ssh true\n"),
        "  ssh = [\"default\"]",
    );
    let output = bake(dir.path(), &["--builder", "docker://", "--allow=ssh"], &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("target `default`") && text.contains("SSH_AUTH_SOCK"),
        "{text}"
    );

    let key = dir.path().join("id_ed25519");
    std::fs::write(&key, "a key file").unwrap();
    let output = bake(
        dir.path(),
        &[
            "--builder",
            "docker://",
            "--set",
            "*.ssh=default=id_ed25519",
        ],
        &[],
    );
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("is not an agent socket"), "{text}");
}

fn write_docker_config(dir: &Path, host: &str, password: &str) {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("builder:{password}"));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
}

#[test]
fn registry_credentials_come_from_the_docker_config() {
    if !engine() || !seed_base() || !support::can_build() {
        return;
    }
    let Some(registry) = TestRegistry::start_with_auth("builder", "session-pass-7d1") else {
        return;
    };
    let _serial = serial();
    let scratch = tempfile::tempdir().unwrap();
    let config = scratch.path().join("docker");
    write_docker_config(&config, &registry.host, "session-pass-7d1");
    let config = config.display().to_string();
    // A repository no earlier run pushed, so the engine cannot have it cached.
    let repository = format!(
        "{}/session-{}",
        registry.host,
        uuid::Uuid::new_v4().simple()
    );
    let seed = project(
        "FROM base\n",
        &format!(
            "  contexts = {{ base = \"{}\" }}\n  output = [\"type=image,name={repository}:latest,push=true\"]",
            support::busybox_base()
        ),
    );
    let root = scratch.path().join("state").display().to_string();
    let pushed = bake(
        seed.path(),
        &["--root", &root],
        &[("DOCKER_CONFIG", &config)],
    );
    assert!(pushed.status.success(), "{}", stderr(&pushed));

    let dir = project(
        &format!("FROM {repository}\nRUN echo pulled > /pulled.txt\n"),
        "  output = [\"type=local,dest=out\"]",
    );
    let empty = scratch.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let anonymous = bake(
        dir.path(),
        &["--builder", "docker://"],
        &[("DOCKER_CONFIG", &empty.display().to_string())],
    );
    let text = stderr(&anonymous);
    assert_eq!(anonymous.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&registry.host)
            && (text.contains("401") || text.to_lowercase().contains("authoriz")),
        "{text}"
    );

    let output = bake(
        dir.path(),
        &["--builder", "docker://"],
        &[("DOCKER_CONFIG", &config)],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/pulled.txt")).unwrap(),
        "pulled\n"
    );
}
