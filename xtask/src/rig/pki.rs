//! Certificates and keys for the rig's API server and kwok's kubelet endpoint, made with `openssl`
//! (Debian's), once per `rig up` into `<state>/pki`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.crt"))
    }
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }
    pub fn token_file(&self) -> PathBuf {
        self.dir.join("tokens.csv")
    }
    pub fn token(&self) -> Result<String> {
        self.token_of("stack-rig-admin")
    }
    /// The token of the rig's "forbidden" identity: what a kubeconfig stack must never mutate
    /// through uses (every request it makes is in the audit log under this user name).
    pub fn forbidden_token(&self) -> Result<String> {
        self.token_of(FORBIDDEN_USER)
    }
    fn token_of(&self, user: &str) -> Result<String> {
        let text = std::fs::read_to_string(self.token_file())?;
        text.lines()
            .find(|l| l.split(',').nth(1) == Some(user))
            .and_then(|l| l.split(',').next())
            .map(str::to_owned)
            .ok_or_else(|| {
                anyhow::anyhow!("no token for {user} in {}", self.token_file().display())
            })
    }
}

/// The user of the rig's "forbidden" kubeconfig (contexts `prod`, `kind-prod`): as powerful as the
/// admin, so a mistaken mutation would succeed — and the audit log would show it.
pub const FORBIDDEN_USER: &str = "stack-rig-forbidden";

fn random_token() -> Result<String> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates the CA, serving certificates, service-account key and admin token unless present.
pub fn ensure(dir: &Path) -> Result<Pki> {
    let pki = Pki {
        dir: dir.to_path_buf(),
    };
    if pki.token_file().exists() {
        // Rigs made before the forbidden identity existed get it (the API server reads the file
        // when it starts: `rig down && rig up`).
        if pki.forbidden_token().is_err() {
            let mut text = std::fs::read_to_string(pki.token_file())?;
            text.push_str(&format!(
                "{},{FORBIDDEN_USER},{FORBIDDEN_USER},\"system:masters\"\n",
                random_token()?
            ));
            std::fs::write(pki.token_file(), text)?;
        }
        return Ok(pki);
    }
    std::fs::create_dir_all(dir)?;
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=stack-rig-ca",
            "-days",
            "3650",
            "-out",
            "ca.crt",
        ],
    )?;
    let apiserver_sans =
        "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,\
                          DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local";
    serving_cert(dir, "apiserver", "kube-apiserver", apiserver_sans)?;
    serving_cert(dir, "kwok", "kwok-kubelet", "IP:127.0.0.1,DNS:localhost")?;
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "sa.key",
        ],
    )?;
    openssl(dir, &["ec", "-in", "sa.key", "-pubout", "-out", "sa.pub"])?;
    // The admin identity: a static token in system:masters (everything on the rig uses it).
    std::fs::write(
        pki.token_file(),
        format!(
            "{},stack-rig-admin,stack-rig-admin,\"system:masters\"\n{},{FORBIDDEN_USER},{FORBIDDEN_USER},\"system:masters\"\n",
            random_token()?,
            random_token()?
        ),
    )?;
    Ok(pki)
}

fn serving_cert(dir: &Path, name: &str, cn: &str, sans: &str) -> Result<()> {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let crt = format!("{name}.crt");
    let ext = format!("{name}.ext");
    std::fs::write(
        dir.join(&ext),
        format!(
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={sans}\n"
        ),
    )?;
    openssl(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &key,
        ],
    )?;
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN={cn}"),
            "-out",
            &csr,
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
    )?;
    Ok(())
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running openssl (apt-get install openssl)")?;
    if !out.status.success() {
        bail!(
            "openssl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
