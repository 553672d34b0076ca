//! [`BackendKind`]: which client library serves requests, a name shared by configuration,
//! errors and responses.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Which client library serves requests.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// libcurl, through the `curl` crate.
    Curl,
    /// `reqwest`.
    Reqwest,
    /// `hyper` 1 with the `hyper-util` legacy client.
    Hyper,
    /// `ureq` 3 (blocking).
    Ureq,
    /// The scripted in-process `MockBackend`.
    Mock,
}

impl BackendKind {
    /// Every kind, in a fixed order.
    pub const ALL: [BackendKind; 5] = [
        BackendKind::Curl,
        BackendKind::Reqwest,
        BackendKind::Hyper,
        BackendKind::Ureq,
        BackendKind::Mock,
    ];

    /// The lowercase name (`curl`, `reqwest`, `hyper`, `ureq`, `mock`).
    pub const fn as_str(self) -> &'static str {
        match self {
            BackendKind::Curl => "curl",
            BackendKind::Reqwest => "reqwest",
            BackendKind::Hyper => "hyper",
            BackendKind::Ureq => "ureq",
            BackendKind::Mock => "mock",
        }
    }

    /// True when this build has the backend's cargo feature.
    pub const fn is_enabled(self) -> bool {
        match self {
            BackendKind::Curl => cfg!(feature = "curl"),
            BackendKind::Reqwest => cfg!(feature = "reqwest"),
            BackendKind::Hyper => cfg!(feature = "hyper"),
            BackendKind::Ureq => cfg!(feature = "ureq"),
            BackendKind::Mock => true,
        }
    }

    /// The kinds this build has, real clients first.
    pub fn enabled() -> impl Iterator<Item = BackendKind> {
        BackendKind::ALL.into_iter().filter(|k| k.is_enabled())
    }
}

impl Default for BackendKind {
    fn default() -> Self {
        [
            BackendKind::Hyper,
            BackendKind::Reqwest,
            BackendKind::Curl,
            BackendKind::Ureq,
        ]
        .into_iter()
        .find(|k| k.is_enabled())
        .unwrap_or(BackendKind::Mock)
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::builder(format!(
                    "unknown backend {s:?}: expected curl, reqwest, hyper, ureq or mock"
                ))
            })
    }
}
