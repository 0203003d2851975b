//! `stack::oci` against REAL registries (tier "rig"): the rig's registry (Debian's docker-registry,
//! distribution v2, plain HTTP on 127.0.0.1:25000, no auth) with an image pushed by the rig's real
//! dockerd and a chart pushed by real `helm push`; and a second real docker-registry process this
//! test starts with htpasswd (Basic) auth on a free 127.0.0.1 port. The Bearer token flow has no
//! real token server here: it is covered by the fake token server in `src/oci.rs`'s unit tests.

use crate::support;
use stack::oci::{self, Credentials, Existence, Reference};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(20);

/// `user1`'s password in the auth registry's htpasswd file, and its bcrypt hash there (cost 4,
/// made once with `python3 -c 'import crypt; print(crypt.crypt(PASSWORD,
/// crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))'`), so the test needs no htpasswd tool.
const USER: &str = "user1";
const PASSWORD: &str = "oci-test-Pa55word";
const HTPASSWD: &str = "user1:$2b$04$g88cxh2Qm/aqghdUG874L.utuFd3gHFni76zjo.A8VoyaeUI0zBZq\n";

/// The rig (its registry and dockerd) and a scratch directory with this test's unique id.
struct Rig {
    env: support::RigEnv,
    docker_host: String,
    registry: String,
    dir: tempfile::TempDir,
    /// Unique to this test run: the repository prefix of everything it pushes.
    id: String,
    /// Local tags this test made, removed on drop.
    tags: Vec<String>,
}

fn rig() -> Option<Rig> {
    let found = support::rig_docker().and_then(|docker_host| {
        let env = support::rig_env()?;
        let registry = env
            .vars
            .get("STACK_RIG_REGISTRY")
            .cloned()
            .ok_or("the rig env names no STACK_RIG_REGISTRY")?;
        Ok((env, docker_host, registry))
    });
    let available = found
        .as_ref()
        .map(|_| ())
        .map_err(|e| format!("{e} (run `cargo xtask rig up`)"));
    if !support::require("rig", available) {
        return None;
    }
    let (env, docker_host, registry) = found.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let id = format!(
        "stack-oci-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    Some(Rig {
        env,
        docker_host,
        registry,
        dir,
        id,
        tags: Vec::new(),
    })
}

impl Rig {
    /// `docker` against the rig's dockerd, with this test's own client config directory (a
    /// `docker login` here never touches the user's ~/.docker).
    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("--config")
            .arg(self.dir.path().join("docker-config"))
            .args(["-H", &self.docker_host])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Tags the rig's busybox as `target` and pushes it; returns the digest the push reports.
    fn push_busybox(&mut self, target: &str) -> String {
        let o = self.docker(&["tag", "busybox:latest", target]);
        assert!(o.status.success(), "docker tag: {}", text(&o.stderr));
        self.tags.push(target.to_owned());
        let o = self.docker(&["push", target]);
        assert!(
            o.status.success(),
            "docker push {target}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        // `1.0: digest: sha256:… size: 527`
        digest_after(&text(&o.stdout), "digest: ")
    }

    /// Packages a tiny chart `name` at `version` and pushes it to `oci://REGISTRY/<id>/charts`;
    /// returns the digest helm reports.
    fn push_chart(&self, name: &str, version: &str) -> String {
        let src = self.dir.path().join("chart-src").join(name);
        std::fs::create_dir_all(src.join("templates")).unwrap();
        std::fs::write(
            src.join("Chart.yaml"),
            format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
        )
        .unwrap();
        std::fs::write(
            src.join("templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
        )
        .unwrap();
        let out = self.dir.path().join("packages");
        let o = self.helm(&[
            "package",
            src.to_str().unwrap(),
            "-d",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "helm package: {}", text(&o.stderr));
        let tgz = out.join(format!("{name}-{version}.tgz"));
        let o = self.helm(&[
            "push",
            tgz.to_str().unwrap(),
            &format!("oci://{}/{}/charts", self.registry, self.id),
            "--plain-http",
        ]);
        assert!(o.status.success(), "helm push: {}", text(&o.stderr));
        // `Pushed: …` / `Digest: sha256:…` (on stderr or stdout, by helm version).
        digest_after(
            &format!("{}{}", text(&o.stdout), text(&o.stderr)),
            "Digest: ",
        )
    }

    /// The pinned helm with every config/cache path inside this test's directory.
    fn helm(&self, args: &[&str]) -> Output {
        let helm = support::find_tool("helm").unwrap_or_else(|_| self.env.bin_dir.join("helm"));
        let home = self.dir.path().join("helm");
        Command::new(helm)
            .args(args)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_REGISTRY_CONFIG", home.join("registry.json"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        for tag in std::mem::take(&mut self.tags) {
            let _ = self.docker(&["rmi", &tag]);
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The `sha256:…` right after `marker` in a tool's output.
fn digest_after(output: &str, marker: &str) -> String {
    let at = output
        .find(marker)
        .unwrap_or_else(|| panic!("no `{marker}` in:\n{output}"));
    let digest: String = output[at + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == ':')
        .collect();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{output}"
    );
    digest
}

fn found(digest: &str) -> Result<Existence, String> {
    Ok(Existence::Found {
        digest: Some(digest.to_owned()),
    })
}

async fn exists(r: &Reference, creds: Option<&Credentials>) -> Result<Existence, String> {
    oci::exists(r, creds, false, TIMEOUT).await
}

#[tokio::test]
async fn an_image_and_a_chart_pushed_to_the_rig_registry_are_found_and_absent_ones_missing() {
    let Some(mut rig) = rig() else { return };
    let (registry, id) = (rig.registry.clone(), rig.id.clone());

    // An image pushed by the real dockerd, by tag and by digest, under both loopback spellings
    // (plain HTTP without being told: Docker treats loopback registries as insecure).
    let image = format!("{registry}/{id}/busybox:1.0");
    let digest = rig.push_busybox(&image);
    let by_tag = oci::parse_image(&image).unwrap();
    assert_eq!(exists(&by_tag, None).await, found(&digest));
    let port = registry.rsplit_once(':').unwrap().1;
    let localhost = oci::parse_image(&format!("localhost:{port}/{id}/busybox:1.0")).unwrap();
    assert_eq!(exists(&localhost, None).await, found(&digest));
    let by_digest = oci::parse_image(&format!("{registry}/{id}/busybox@{digest}")).unwrap();
    assert_eq!(exists(&by_digest, None).await, found(&digest));
    // Told explicitly that it speaks plain HTTP: the same answer.
    assert_eq!(
        oci::exists(&by_tag, None, true, TIMEOUT).await,
        found(&digest)
    );

    // A chart pushed by real helm; its `+` version is stored as `_`.
    let chart_digest = rig.push_chart("ocitest", "0.1.0+build.5");
    let chart_ref = format!("oci://{registry}/{id}/charts/ocitest");
    let chart = oci::chart(&chart_ref, "0.1.0+build.5").unwrap();
    assert_eq!(chart.tag.as_deref(), Some("0.1.0_build.5"));
    assert_eq!(exists(&chart, None).await, found(&chart_digest));

    // What is not there is Missing: a tag, a digest, a repository, a chart version.
    let missing_tag = oci::parse_image(&format!("{registry}/{id}/busybox:9.9")).unwrap();
    assert_eq!(exists(&missing_tag, None).await, Ok(Existence::Missing));
    let other = format!("sha256:{}", "0".repeat(64));
    let missing_digest = oci::parse_image(&format!("{registry}/{id}/busybox@{other}")).unwrap();
    assert_eq!(exists(&missing_digest, None).await, Ok(Existence::Missing));
    let missing_repo = oci::parse_image(&format!("{registry}/{id}/nothing-here:1.0")).unwrap();
    assert_eq!(exists(&missing_repo, None).await, Ok(Existence::Missing));
    let missing_version = oci::chart(&chart_ref, "0.2.0").unwrap();
    assert_eq!(exists(&missing_version, None).await, Ok(Existence::Missing));

    // All at once, in order.
    let items = vec![
        ("chart".to_owned(), chart),
        ("image busybox".to_owned(), by_tag),
        ("image nothing-here".to_owned(), missing_repo),
        ("chart 0.2.0".to_owned(), missing_version),
    ];
    let results = oci::check_all(&items, |_| None, |_| false, TIMEOUT).await;
    let got: Vec<(&str, &Result<Existence, String>)> =
        results.iter().map(|(w, r)| (w.as_str(), r)).collect();
    assert_eq!(
        got,
        [
            ("chart", &found(&chart_digest)),
            ("image busybox", &found(&digest)),
            ("image nothing-here", &Ok(Existence::Missing)),
            ("chart 0.2.0", &Ok(Existence::Missing)),
        ]
    );
}

/// A real docker-registry process with htpasswd auth on a free 127.0.0.1 port, stopped (by its
/// pid) on drop.
struct AuthRegistry {
    child: Child,
    address: String,
    log: PathBuf,
}

impl AuthRegistry {
    async fn start(dir: &Path) -> AuthRegistry {
        let binary = which::which("docker-registry")
            .expect("docker-registry (Debian's package, which `cargo xtask rig up` installs)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let root = dir.join("auth-registry");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("htpasswd"), HTPASSWD).unwrap();
        let config = root.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {address}\nauth:\n  htpasswd:\n    realm: stack-oci-test\n    path: {}\n",
                root.join("data").display(),
                root.join("htpasswd").display()
            ),
        )
        .unwrap();
        let log = root.join("registry.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut registry = AuthRegistry {
            child,
            address,
            log,
        };
        registry.wait_ready().await;
        registry
    }

    /// Until `/v2/` answers 401 (auth is on).
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let req = stack::net::http::Request {
            method: "GET".into(),
            url: format!("http://{}/v2/", self.address),
            headers: vec![],
            body: vec![],
        };
        loop {
            if let Ok(r) = stack::net::http::send(&req, Duration::from_secs(2)).await {
                assert_eq!(r.status, 401, "auth registry /v2/ without credentials");
                let challenge = r.header("www-authenticate").unwrap_or_default();
                assert!(challenge.starts_with("Basic realm="), "{challenge}");
                return;
            }
            let exited = self.child.try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "the auth registry did not start ({exited:?}); its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_registry_with_basic_auth_needs_the_right_credentials_and_never_shows_the_password() {
    let Some(mut rig) = rig() else { return };
    let auth = AuthRegistry::start(rig.dir.path()).await;
    let address = auth.address.clone();

    // Push through the rig's dockerd, logged in with a client config of this test's own.
    let mut login = Command::new("docker")
        .arg("--config")
        .arg(rig.dir.path().join("docker-config"))
        .args(["-H", &rig.docker_host, "login", &address])
        .args(["--username", USER, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut login.stdin.take().unwrap(), PASSWORD.as_bytes()).unwrap();
    let o = login.wait_with_output().unwrap();
    assert!(o.status.success(), "docker login: {}", text(&o.stderr));
    let image = format!("{address}/{}/private:1.0", rig.id);
    let digest = rig.push_busybox(&image);
    let r = oci::parse_image(&image).unwrap();

    // The right credentials: found, with the registry's digest; absent things are Missing.
    let right = Credentials {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    assert_eq!(exists(&r, Some(&right)).await, found(&digest));
    let missing_tag = oci::parse_image(&format!("{address}/{}/private:2.0", rig.id)).unwrap();
    assert_eq!(
        exists(&missing_tag, Some(&right)).await,
        Ok(Existence::Missing)
    );
    let missing_repo = oci::parse_image(&format!("{address}/{}/absent:1.0", rig.id)).unwrap();
    assert_eq!(
        exists(&missing_repo, Some(&right)).await,
        Ok(Existence::Missing)
    );

    // No credentials: an error naming the registry, never Missing.
    let e = exists(&r, None).await.unwrap_err();
    assert!(e.contains(&format!("registry {address}")), "{e}");
    assert!(e.contains("credentials missing"), "{e}");
    let e = exists(&missing_tag, None).await.unwrap_err();
    assert!(e.contains("credentials missing"), "{e}");

    // A wrong password: refused, and the password appears nowhere.
    let wrong_password = "Wr0ng-pa55-for-user1";
    let wrong = Credentials {
        username: USER.into(),
        password: wrong_password.into(),
    };
    let result = exists(&r, Some(&wrong)).await;
    let e = result.clone().unwrap_err();
    assert!(e.contains(&format!("registry {address}")), "{e}");
    assert!(e.contains("credentials refused"), "{e}");
    let everything = format!("{e}\n{result:?}\n{wrong:?}\n{right:?}");
    for secret in [wrong_password, PASSWORD] {
        assert!(!everything.contains(secret), "{everything}");
    }

    // check_all asks each registry with its own credentials.
    let items = vec![
        ("image private".to_owned(), r.clone()),
        ("image absent".to_owned(), missing_repo),
    ];
    let creds_for = |registry: &str| (registry == address).then(|| right.clone());
    let results = oci::check_all(&items, creds_for, |_| false, TIMEOUT).await;
    assert_eq!(results[0].1, found(&digest));
    assert_eq!(results[1].1, Ok(Existence::Missing));

    drop(auth);
    // Stopped: the registry is gone, and saying so is an error, not Missing.
    let e = exists(&r, Some(&right)).await.unwrap_err();
    assert!(e.contains("connection refused"), "{e}");
}
