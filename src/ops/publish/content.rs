//! What a chart archive holds, as one digest. `helm package` is not reproducible (every tar
//! header carries the packaging time), so two packages of the same chart differ byte for byte;
//! "the same release" is judged on contents instead: every file's path and bytes, sorted by path,
//! with a subchart archive under `charts/` counted by its own contents (a `file://` subchart is
//! packaged afresh by `helm dependency build`, timestamps and all). Helm writes Chart.yaml itself
//! (re-serialised metadata), so two helm versions could disagree on it; the same helm agrees.

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};
use std::io::Read;

/// `sha256:<hex>` over the archive's files; an error when it is no gzipped tar.
pub fn digest(tgz: &[u8]) -> Result<String, String> {
    let mut h = Sha256::new();
    feed(tgz, &mut h, 0)?;
    Ok(format!("sha256:{:x}", h.finalize()))
}

fn feed(tgz: &[u8], h: &mut Sha256, depth: usize) -> Result<(), String> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut archive = tar::Archive::new(GzDecoder::new(tgz));
    let entries = archive
        .entries()
        .map_err(|e| format!("not a chart archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a chart archive: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| format!("not a chart archive: {e}"))?
            .to_string_lossy()
            .into_owned();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| format!("not a chart archive: {e}"))?;
        files.push((path, bytes));
    }
    files.sort();
    for (path, bytes) in files {
        h.update(path.as_bytes());
        h.update([0]);
        let nested = depth < 4 && path.contains("/charts/") && path.ends_with(".tgz");
        if nested {
            h.update(b"tgz\0");
            feed(&bytes, h, depth + 1)?;
        } else {
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(&bytes);
        }
    }
    h.update(b"end\0");
    Ok(())
}

#[cfg(test)]
mod tests {
    fn tgz(files: &[(&str, &str)], mtime: u64) -> Vec<u8> {
        let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::default(),
        ));
        for (path, text) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(mtime);
            header.set_cksum();
            b.append_data(&mut header, path, text.as_bytes()).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn timestamps_and_order_do_not_count_contents_do() {
        let a = tgz(&[("c/Chart.yaml", "v: 1"), ("c/values.yaml", "x: 1")], 1);
        let b = tgz(&[("c/values.yaml", "x: 1"), ("c/Chart.yaml", "v: 1")], 99);
        let c = tgz(&[("c/Chart.yaml", "v: 1"), ("c/values.yaml", "x: 2")], 1);
        assert_ne!(a, b);
        assert_eq!(super::digest(&a), super::digest(&b));
        assert_ne!(super::digest(&a), super::digest(&c));
        assert!(super::digest(b"not gzip").is_err());
    }
}
