//! What can be known without a host: every file each host would get, with
//! templates rendered (`slipway render`). Files whose content comes from the
//! host (built from its facts, or JSON keys merged into what is there) are
//! not among them. No connection is made.

use std::path::{Path, PathBuf};

use crate::desired::HostState;
use crate::redact::Redactor;

/// One file a host would get.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RenderedFile {
    pub host: String,
    /// Where it goes on the host.
    pub path: String,
    /// The content, secrets replaced by a placeholder.
    #[serde(skip)]
    pub bytes: Vec<u8>,
    pub sensitive: bool,
}

/// Every file of every host, in plan order.
pub fn files(states: &[HostState], redactor: &Redactor) -> Vec<RenderedFile> {
    let mut out = Vec::new();
    for state in states {
        for r in state.resources() {
            let Some(c) = r.content() else { continue };
            let bytes = match std::str::from_utf8(c.bytes) {
                Ok(text) => redactor.redact(text).into_bytes(),
                Err(_) => c.bytes.to_vec(),
            };
            out.push(RenderedFile {
                host: state.host.name.clone(),
                path: c.path.to_string(),
                bytes,
                sensitive: c.sensitive || redactor.touches(c.bytes),
            });
        }
    }
    out
}

/// Where `file` goes under `out`: `OUT/HOST/path/on/host`. Only plain path
/// components are kept (no `..`), so nothing lands outside `out`.
pub fn target(out: &Path, file: &RenderedFile) -> PathBuf {
    let mut path = out.join(&file.host);
    for part in Path::new(&file.path).components() {
        if let std::path::Component::Normal(p) = part {
            path.push(p);
        }
    }
    path
}

/// Writes every file under `out`. A sensitive file holds only a placeholder.
pub fn write(out: &Path, files: &[RenderedFile]) -> std::io::Result<()> {
    for f in files {
        let path = target(out, f);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let bytes: &[u8] = if f.sensitive {
            b"(sensitive: not written)\n"
        } else {
            &f.bytes
        };
        std::fs::write(&path, bytes)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stay_inside_the_output_directory() {
        let file = |path: &str| RenderedFile {
            host: "web1".into(),
            path: path.into(),
            bytes: Vec::new(),
            sensitive: false,
        };
        let out = Path::new("/tmp/out");
        assert_eq!(
            target(out, &file("/etc/motd")),
            Path::new("/tmp/out/web1/etc/motd")
        );
        assert_eq!(
            target(out, &file("/../../etc/x")),
            Path::new("/tmp/out/web1/etc/x")
        );
    }
}
