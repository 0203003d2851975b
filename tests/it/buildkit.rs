//! `stack build` goes through BuildKit, against the rig's real dockerd (tier "docker"): cache
//! mounts persist between builds, heredocs build where the daemon's built-in Dockerfile frontend
//! has them (and are explained where it does not), a failing `RUN` names its step and last output
//! lines (the step that failed, not one BuildKit cancelled because of it), and the image is in the
//! daemon under its content tag, a cache hit the second time. Nothing is pulled: every image is
//! `FROM` the seeded busybox and no Dockerfile has a `# syntax=` line.

use crate::support;
use std::process::Output;

struct Project {
    dir: tempfile::TempDir,
    docker_host: String,
    /// The test's own repository (and cache-mount id), so tests and earlier runs never share.
    repository: String,
}

/// A project with one image, `app`, built from `dockerfile` with a `data.txt` beside it.
fn project(dockerfile: &str) -> Option<Project> {
    let support::DockerDir {
        dir,
        docker_host,
        id,
    } = support::docker_dir("t")?;
    let repository = format!("{id}/app");
    std::fs::create_dir(dir.path().join("app")).unwrap();
    std::fs::write(dir.path().join("app/data.txt"), "one\n").unwrap();
    std::fs::write(
        dir.path().join("stack.yaml"),
        format!(
            "apiVersion: stack/v1\nproject: bk\nimages:\n  app:\n    context: app\n    repository: {repository}\n"
        ),
    )
    .unwrap();
    let p = Project {
        dir,
        docker_host,
        repository,
    };
    p.dockerfile(dockerfile);
    Some(p)
}

impl Project {
    /// Writes the Dockerfile; `{id}` becomes the test's own id (for cache-mount ids).
    fn dockerfile(&self, text: &str) {
        let id = self.repository.replace('/', "-");
        std::fs::write(
            self.dir.path().join("app/Dockerfile"),
            text.replace("{id}", &id),
        )
        .unwrap();
    }

    fn stack(&self, args: &[&str]) -> Output {
        std::process::Command::new(support::stack_bin())
            .current_dir(self.dir.path())
            .args(args)
            .env("DOCKER_HOST", &self.docker_host)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    /// `stack build --format json`: the exit code and the one image's report.
    fn build(&self) -> (Option<i32>, serde_json::Value) {
        let o = self.stack(&["build", "--format", "json"]);
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}\nstdout: {}\nstderr: {}",
                text(&o.stdout),
                text(&o.stderr)
            )
        });
        (o.status.code(), report["images"][0].clone())
    }

    fn docker(&self, args: &[&str]) -> Output {
        std::process::Command::new("docker")
            .arg("-H")
            .arg(&self.docker_host)
            .args(args)
            .output()
            .unwrap()
    }

    /// `docker run --rm <image> cat <path>`.
    fn cat(&self, image: &str, path: &str) -> String {
        let o = self.docker(&["run", "--rm", image, "cat", path]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout)
    }

    /// The daemon's Docker Engine major version.
    fn engine_major(&self) -> u32 {
        let o = self.docker(&["version", "--format", "{{.Server.Version}}"]);
        let version = text(&o.stdout);
        version
            .trim()
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("engine version {version:?}"))
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        // Only this test's images: they carry its own repository.
        let ids = self.docker(&["images", "-q", &self.repository]);
        for id in text(&ids.stdout).lines() {
            let _ = self.docker(&["rmi", "-f", id]);
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn status(image: &serde_json::Value) -> &str {
    image["outcome"]["status"].as_str().unwrap_or("?")
}

#[test]
fn cache_mounts_persist_and_the_image_is_tagged_then_a_cache_hit() {
    let Some(p) = project(
        "FROM busybox:latest\nCOPY data.txt /data.txt\nRUN --mount=type=cache,target=/cache,id={id} \\\n    echo \"built with $(cat /data.txt)\" >> /cache/log && cp /cache/log /log\n",
    ) else {
        return;
    };
    let (code, first) = p.build();
    assert_eq!((code, status(&first)), (Some(0), "built"), "{first}");
    let reference = first["reference"].as_str().unwrap().to_owned();
    assert!(
        reference.starts_with(&format!("{}:", p.repository)),
        "{reference}"
    );

    // The image is in the daemon under that tag, with stack's labels.
    let labels = p.docker(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &reference,
    ]);
    assert!(labels.status.success(), "{}", text(&labels.stderr));
    let labels: serde_json::Value = serde_json::from_slice(&labels.stdout).unwrap();
    assert_eq!(labels["dev.stack.owned"], "true");
    assert_eq!(labels["dev.stack.image"], "app");
    assert_eq!(p.cat(&reference, "/log"), "built with one\n");

    // Unchanged: a cache hit, nothing built.
    let (code, second) = p.build();
    assert_eq!((code, status(&second)), (Some(0), "up-to-date"), "{second}");
    assert_eq!(second["reference"], first["reference"]);

    // A change re-runs the step; the cache mount still holds what the first build wrote there.
    std::fs::write(p.dir.path().join("app/data.txt"), "two\n").unwrap();
    let (code, third) = p.build();
    assert_eq!((code, status(&third)), (Some(0), "built"), "{third}");
    assert_ne!(third["reference"], first["reference"]);
    assert_eq!(
        p.cat(third["reference"].as_str().unwrap(), "/log"),
        "built with one\nbuilt with two\n"
    );
}

#[test]
fn heredocs_build_where_the_daemons_frontend_has_them() {
    let Some(p) = project(
        "FROM busybox:latest\nRUN <<EOF\necho from a heredoc > /heredoc\necho second line >> /heredoc\nEOF\n",
    ) else {
        return;
    };
    let (code, image) = p.build();
    // The daemon's built-in Dockerfile frontend parses heredocs from Docker Engine 23.0 on; stack
    // never has BuildKit pull a newer frontend (nothing can be pulled here, nor in many CI setups).
    if p.engine_major() >= 23 {
        assert_eq!((code, status(&image)), (Some(0), "built"), "{image}");
        assert_eq!(
            p.cat(image["reference"].as_str().unwrap(), "/heredoc"),
            "from a heredoc\nsecond line\n"
        );
    } else {
        // An older daemon (the rig's Debian dockerd is 20.10) cannot: the failure says why.
        assert_eq!((code, status(&image)), (Some(1), "failed"), "{image}");
        let message = image["outcome"]["message"].as_str().unwrap();
        assert!(
            message.contains("dockerfile parse error")
                && message.contains("heredocs (`RUN <<EOF`)")
                && message.contains("Docker Engine 23.0+"),
            "{message}"
        );
    }
}

#[test]
fn a_failing_run_names_its_step_and_last_output_lines() {
    let Some(p) =
        project("FROM busybox:latest\nRUN echo preparing && echo 'disk on fire' >&2 && exit 7\n")
    else {
        return;
    };
    let o = p.stack(&["build", "app"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains(
            "app: build FAILED at [2/2] RUN echo preparing && echo 'disk on fire' >&2 && exit 7\n"
        ),
        "{err}"
    );
    assert!(err.contains("exit code: 7"), "{err}");
    // Both streams of the step's own output, nothing of BuildKit's bookkeeping.
    let last = err.split("last output:\n").nth(1).unwrap_or_default();
    let mut last: Vec<&str> = last.lines().map(str::trim).collect();
    last.sort_unstable();
    assert_eq!(last, ["disk on fire", "preparing"], "{err}");

    // Failed builds leave no image under the content tag, so the next run builds again.
    let (code, image) = p.build();
    assert_eq!((code, status(&image)), (Some(1), "failed"), "{image}");
    let reference = image["reference"].as_str().unwrap();
    let inspect = p.docker(&["image", "inspect", reference]);
    assert!(!inspect.status.success());
}

#[test]
fn the_step_reported_is_the_one_that_failed_not_one_cancelled_because_of_it() {
    // BuildKit runs `slow` and `broken` side by side; when `broken` fails it cancels `slow`.
    let Some(p) = project(
        "FROM busybox:latest AS slow\nRUN sleep 3 && echo slow > /slow\n\nFROM busybox:latest AS broken\nRUN echo preparing && exit 3\n\nFROM busybox:latest\nCOPY --from=slow /slow /slow\nCOPY --from=broken /etc/hostname /broken\n",
    ) else {
        return;
    };
    let (code, image) = p.build();
    assert_eq!((code, status(&image)), (Some(1), "failed"), "{image}");
    assert_eq!(
        image["outcome"]["step"], "[broken 2/2] RUN echo preparing && exit 3",
        "{image}"
    );
    assert_eq!(
        image["outcome"]["lastLines"],
        serde_json::json!(["preparing"])
    );
    assert!(
        image["outcome"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("exit code: 3")),
        "{image}"
    );
}
