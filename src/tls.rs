//! One rustls configuration (ring provider) for every rustls-based backend, built from
//! [`TlsConfig`](crate::TlsConfig).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::{TlsConfig, TlsVersion};
use crate::error::{Error, Result};

/// The crypto provider of the whole crate.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The crypto provider for `tls`: the crate's, without its TLS 1.2 cipher suites when
/// `min_version` is 1.3 (so that a client whose TLS versions cannot be set, ureq, offers none
/// a TLS 1.2 server could choose).
pub(crate) fn provider_for(tls: &TlsConfig) -> Arc<CryptoProvider> {
    match tls.min_version {
        TlsVersion::Tls12 => provider(),
        TlsVersion::Tls13 => {
            let mut p = (*provider()).clone();
            p.cipher_suites
                .retain(|s| s.version() == &rustls::version::TLS13);
            Arc::new(p)
        }
    }
}

/// A rustls client configuration for `tls`, offering `alpn` protocols in order.
pub(crate) fn client_config(tls: &TlsConfig, alpn: &[&[u8]]) -> Result<rustls::ClientConfig> {
    let provider = provider_for(tls);
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version {
        TlsVersion::Tls12 => rustls::DEFAULT_VERSIONS,
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| Error::builder("TLS configuration").with_source(e))?;
    let builder = if tls.verify {
        let mut roots = RootCertStore::empty();
        // A root the system holds that rustls cannot use is left out, as rustls-native-certs
        // advises; one of the CA file is an error.
        roots.add_parsable_certificates(crate::trust::roots_kept(tls)?);
        if let Some(path) = &tls.ca_file {
            for cert in crate::trust::load_certs(path)? {
                roots.add(cert).map_err(|e| {
                    Error::builder(format!("invalid CA certificate in {}", path.display()))
                        .with_source(e)
                })?;
            }
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerifier(provider)))
    };
    let mut config = match crate::trust::Identity::of(tls)? {
        Some(id) => builder
            .with_client_auth_cert(id.chain, id.key)
            .map_err(|e| Error::builder("invalid client certificate or key").with_source(e))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Accepts any certificate: `tls.verify = false`.
#[derive(Debug)]
struct NoVerifier(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
