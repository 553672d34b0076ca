//! Serde for `Duration`: integer milliseconds or a string with a unit (`ms`, `s`, `m`, `h`).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Raw {
    Int(i64),
    Float(f64),
    Str(String),
}

pub(super) fn parse_str(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit.trim() {
        "" | "ms" => n / 1000.0,
        "us" | "µs" => n / 1_000_000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("unknown duration unit {u:?} in {s:?}")),
    };
    seconds(secs).ok_or_else(|| format!("invalid duration {s:?}"))
}

/// `secs` seconds, clamped to [`MAX_DURATION`](super::MAX_DURATION); `None` when negative
/// or not a number.
fn seconds(secs: f64) -> Option<Duration> {
    if secs.is_nan() || secs < 0.0 {
        return None;
    }
    let max = super::MAX_DURATION;
    Some(Duration::try_from_secs_f64(secs).map_or(max, super::clamp))
}

pub(super) fn from_raw<E: serde::de::Error>(raw: Raw) -> Result<Duration, E> {
    match raw {
        Raw::Int(n) if n >= 0 => Ok(super::clamp(Duration::from_millis(n as u64))),
        Raw::Int(n) => Err(E::custom(format!("negative duration {n}"))),
        Raw::Float(f) => seconds(f / 1000.0)
            .filter(|_| f.is_finite())
            .ok_or_else(|| E::custom(format!("invalid duration {f}"))),
        Raw::Str(s) => parse_str(&s).map_err(E::custom),
    }
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    from_raw(Raw::deserialize(d)?)
}

pub(super) mod opt {
    use super::*;

    pub(in crate::config) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<Raw>::deserialize(d)?.map(from_raw).transpose()
    }
}
