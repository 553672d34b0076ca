//! How libcurl is handed the certificates httpfleet trusts.
//!
//! libcurl copies a `CURLOPT_CAINFO_BLOB` into every transfer's connection settings and
//! compares it byte by byte when it looks for a connection to reuse: with Mozilla's roots (about
//! 220 KB of PEM) that is two passes over the bundle and a large allocation per request, which
//! made one 13-byte GET cost four times the instructions of the same GET with a CA file
//! (`scripts/instructions.sh curl`). A file path is copied as a short string instead, and the
//! store libcurl builds from it is cached on the multi handle. So on Linux the bundle is written
//! once to an anonymous in-memory file (`memfd_create`, never on disk, gone with the backend)
//! and named by its `/proc/self/fd` path; elsewhere, or when that fails, the blob is used.

use curl::easy::Easy2;

use super::collector::Collector;

/// The trusted certificates, in the form libcurl is given them.
pub(super) enum Roots {
    /// An in-memory file holding the PEM, and its path.
    #[cfg(target_os = "linux")]
    File { path: String, _file: std::fs::File },
    /// The PEM itself, copied by libcurl per transfer.
    Blob(Vec<u8>),
}

impl Roots {
    /// `pem` as a file when the system offers one, else as a blob.
    pub(super) fn new(pem: Vec<u8>) -> Roots {
        #[cfg(target_os = "linux")]
        if let Some((path, file)) = memory_file(&pem) {
            return Roots::File { path, _file: file };
        }
        Roots::Blob(pem)
    }

    /// Sets them on `easy`, and no other CA directory (libcurl's own stays out).
    pub(super) fn set(&self, easy: &mut Easy2<Collector>) -> Result<(), curl::Error> {
        match self {
            #[cfg(target_os = "linux")]
            Roots::File { path, .. } => easy.cainfo(path)?,
            Roots::Blob(pem) => easy.ssl_cainfo_blob(pem)?,
        }
        easy.capath("/dev/null")
    }
}

/// An anonymous file holding `pem`, and a path that names it; `None` when there is no such file
/// (no `memfd_create`, no `/proc`) or the path does not lead to it.
#[cfg(target_os = "linux")]
fn memory_file(pem: &[u8]) -> Option<(String, std::fs::File)> {
    use std::io::Write;
    use std::os::fd::AsRawFd;

    let fd = rustix::fs::memfd_create("httpfleet-roots", rustix::fs::MemfdFlags::CLOEXEC).ok()?;
    let mut file = std::fs::File::from(fd);
    file.write_all(pem).ok()?;
    let path = format!("/proc/self/fd/{}", file.as_raw_fd());
    let named = std::fs::metadata(&path).ok()?.len() == pem.len() as u64;
    named.then_some((path, file))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_is_a_file_that_reads_back_whole() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".repeat(100);
        let roots = Roots::new(pem.clone());
        let Roots::File { path, .. } = &roots else {
            panic!("no memory file on Linux");
        };
        assert_eq!(std::fs::read(path).unwrap(), pem);
    }
}
