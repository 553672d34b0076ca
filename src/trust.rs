//! What a client trusts and presents, loaded once by httpfleet for every backend: the root
//! certificates of [`TlsConfig::roots`], a CA file beside or instead of them, and the client
//! identity from PEM or PKCS#12. rustls-based backends take them as DER, libcurl as PEM.

use std::path::Path;

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Roots, TlsConfig};
use crate::error::{Error, Result};

/// The certificates of a PEM file.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::builder(format!("cannot read certificates from {}", path.display()))
                .with_source(e)
        })?;
    if certs.is_empty() {
        return Err(Error::builder(format!(
            "no certificate in {}",
            path.display()
        )));
    }
    Ok(certs)
}

/// The certificates `tls` trusts: its roots, and its CA file beside them or instead of them.
pub(crate) fn trusted(tls: &TlsConfig) -> Result<Vec<CertificateDer<'static>>> {
    let mut certs = roots_kept(tls)?;
    if let Some(path) = &tls.ca_file {
        certs.extend(load_certs(path)?);
    }
    Ok(certs)
}

/// The roots `tls` trusts: none when its CA file replaces them.
pub(crate) fn roots_kept(tls: &TlsConfig) -> Result<Vec<CertificateDer<'static>>> {
    match (&tls.ca_file, tls.ca_file_adds_to_roots) {
        (Some(_), false) => Ok(Vec::new()),
        _ => roots(tls.roots),
    }
}

/// Mozilla's roots as built in, or those the operating system's store holds now.
fn roots(roots: Roots) -> Result<Vec<CertificateDer<'static>>> {
    match roots {
        Roots::Mozilla => Ok(webpki_root_certs::TLS_SERVER_ROOT_CERTS.to_vec()),
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let mut err = Error::builder("no root certificate in the system's store");
                if let Some(e) = found.errors.into_iter().next() {
                    err = err.with_source(e);
                }
                return Err(err);
            }
            Ok(found.certs)
        }
    }
}

/// A client certificate chain and its private key.
pub(crate) struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The identity of `tls`: `client_pkcs12`, or `client_cert` with `client_key` (the key in
    /// the certificate file when that is not set).
    pub(crate) fn of(tls: &TlsConfig) -> Result<Option<Identity>> {
        if let Some(path) = &tls.client_pkcs12 {
            return pkcs12(path, tls.client_pkcs12_password.as_deref().unwrap_or("")).map(Some);
        }
        let Some((cert, key)) = tls.identity() else {
            return Ok(None);
        };
        let chain = load_certs(cert)?;
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
            Error::builder(format!("cannot read private key from {}", key.display())).with_source(e)
        })?;
        Ok(Some(Identity { chain, key }))
    }

    /// The chain and the key as PEM, for libcurl.
    pub(crate) fn to_pem(&self) -> (Vec<u8>, Vec<u8>) {
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        let mut key = Vec::new();
        pem(&mut key, label, self.key.secret_der());
        (certs_pem(&self.chain), key)
    }
}

#[cfg(feature = "pkcs12")]
fn pkcs12(path: &Path, password: &str) -> Result<Identity> {
    let bad = |what: &str| Error::builder(format!("{what} in {}", path.display()));
    let data = std::fs::read(path).map_err(|e| bad("cannot read PKCS#12").with_source(e))?;
    let store = p12_keystore::KeyStore::from_pkcs12(&data, password, Default::default())
        .map_err(|e| bad("invalid PKCS#12 or wrong password").with_source(e))?;
    let (_, found) = store
        .private_key_chain()
        .ok_or_else(|| bad("no private key with its certificate"))?;
    let chain = found
        .certs()
        .iter()
        .map(|c| CertificateDer::from(c.as_der().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(found.key().as_der().to_vec().into());
    Ok(Identity { chain, key })
}

#[cfg(not(feature = "pkcs12"))]
fn pkcs12(_path: &Path, _password: &str) -> Result<Identity> {
    Err(Error::builder("client_pkcs12 needs the pkcs12 feature"))
}

/// `certs` as PEM.
pub(crate) fn certs_pem(certs: &[CertificateDer<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(certs.len() * 2048);
    for cert in certs {
        pem(&mut out, "CERTIFICATE", cert);
    }
    out
}

fn pem(out: &mut Vec<u8>, label: &str, der: &[u8]) {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    out.extend_from_slice(format!("-----BEGIN {label}-----\n").as_bytes());
    for line in text.as_bytes().chunks(64) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.extend_from_slice(format!("-----END {label}-----\n").as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_replaces_the_roots_or_is_added_to_them() {
        let ca = std::env::temp_dir().join(format!("httpfleet-trust-{}.pem", std::process::id()));
        let one = webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].clone();
        std::fs::write(&ca, certs_pem(std::slice::from_ref(&one))).unwrap();
        let mozilla = webpki_root_certs::TLS_SERVER_ROOT_CERTS.len();
        let mut tls = TlsConfig::default();
        assert_eq!(trusted(&tls).unwrap().len(), mozilla);
        tls.ca_file = Some(ca.clone());
        assert_eq!(trusted(&tls).unwrap(), std::slice::from_ref(&one));
        tls.ca_file_adds_to_roots = true;
        assert_eq!(trusted(&tls).unwrap().len(), mozilla + 1);
        std::fs::remove_file(&ca).unwrap();
    }

    #[test]
    fn pem_written_here_reads_back_the_same() {
        let certs = &webpki_root_certs::TLS_SERVER_ROOT_CERTS[..3];
        let back: Vec<_> = CertificateDer::pem_slice_iter(&certs_pem(certs))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, certs);
    }
}
