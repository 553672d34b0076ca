//! Loading and checking `Config`.
use super::*;

#[test]
fn resolve_from_toml_the_environment_and_the_builder_means_the_same() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let built = Config::default().resolve("API.example", [ip("127.0.0.1"), ip("::1")]);
    let toml =
        Config::from_toml_str("[resolve]\n\"Api.Example\" = [\"127.0.0.1\", \"::1\"]\n").unwrap();
    let env = Config::from_vars(|name| {
        (name == "HTTPFLEET_RESOLVE").then(|| "api.example=127.0.0.1, ::1".to_owned())
    })
    .unwrap();
    assert_eq!(built.resolve_map(), toml.resolve_map());
    assert_eq!(built.resolve_map(), env.resolve_map());
    for bad in ["api.example", "api.example=not-an-ip", "=127.0.0.1"] {
        let err = Config::from_vars(|name| (name == "HTTPFLEET_RESOLVE").then(|| bad.to_owned()))
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Builder, "{bad}");
    }
    let err = Config::default()
        .resolve("a b", [ip("127.0.0.1")])
        .validate()
        .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Builder);
}

#[test]
fn toml_durations_take_units_and_milliseconds() {
    let c = Config::from_toml_str(
        "backend = \"mock\"\ntimeout = \"5s\"\nconnect_timeout = 250\nread_timeout = \"2m\"\n[pool]\nidle_timeout = \"1500ms\"\n",
    )
    .unwrap();
    assert_eq!(c.timeout, Duration::from_secs(5));
    assert_eq!(c.connect_timeout, Duration::from_millis(250));
    assert_eq!(c.read_timeout, Some(Duration::from_secs(120)));
    assert_eq!(c.pool.idle_timeout, Duration::from_millis(1500));
    assert_eq!(c.backend, BackendKind::Mock);
}

#[test]
fn zero_or_negative_timeouts_are_builder_errors() {
    for toml in [
        "timeout = 0",
        "timeout = -5",
        "connect_timeout = \"0s\"",
        "timeout = \"-1s\"",
    ] {
        let err = Config::from_toml_str(toml).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Builder, "{toml}");
    }
    let err = Config::default()
        .timeout(Duration::ZERO)
        .validate()
        .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Builder);
}

#[test]
fn backend_kind_and_http_version_serialize_as_their_names() {
    assert_eq!(
        serde_json::to_string(&BackendKind::Ureq).unwrap(),
        "\"ureq\""
    );
    assert_eq!(
        serde_json::to_string(&HttpVersion::Http2).unwrap(),
        "\"http2\""
    );
    let back: BackendKind = serde_json::from_str("\"curl\"").unwrap();
    assert_eq!(back, BackendKind::Curl);
}

#[test]
fn unknown_keys_are_refused() {
    assert!(Config::from_toml_str("timeuot = 5").is_err());
}

#[test]
fn env_variables_apply() {
    let vars = |n: &str| match n {
        "HTTPFLEET_BACKEND" => Some("mock".to_owned()),
        "HTTPFLEET_TIMEOUT_MS" => Some("5000".to_owned()),
        "HTTPFLEET_HTTP_VERSION" => Some("http1".to_owned()),
        "HTTPFLEET_DECOMPRESS" => Some("false".to_owned()),
        _ => None,
    };
    let c = Config::from_vars(vars).unwrap();
    assert_eq!(c.backend, BackendKind::Mock);
    assert_eq!(c.timeout, Duration::from_secs(5));
    assert_eq!(c.http_version, HttpVersion::Http1);
    assert!(!c.decompress);
    let bad = Config::from_vars(|n| (n == "HTTPFLEET_TIMEOUT_MS").then(|| "soon".to_owned()));
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("HTTPFLEET_TIMEOUT_MS")
    );
}

/// Every way of building a configuration gives the documented defaults: certificate
/// checking on.
#[test]
fn every_default_verifies_certificates() {
    assert!(TlsConfig::default().verify);
    assert!(Config::default().tls.verify);
    assert!(Config::default().tls(TlsConfig::default()).tls.verify);
    assert!(Config::from_toml_str("").unwrap().tls.verify);
    assert!(Config::from_toml_str("[tls]\n").unwrap().tls.verify);
    assert!(Config::from_json_str("{\"tls\": {}}").unwrap().tls.verify);
    assert!(Config::from_vars(|_| None).unwrap().tls.verify);
    assert_eq!(PoolConfig::default(), Config::default().pool);
}

#[test]
fn debug_hides_secrets() {
    let c = Config::default()
        .basic_auth("alice", "hunter2")
        .proxy("http://bob:s3cret@127.0.0.1:3128")
        .default_header("Authorization", "Bearer tok3n");
    let s = format!("{c:?}");
    assert!(
        !s.contains("hunter2") && !s.contains("s3cret") && !s.contains("tok3n"),
        "{s}"
    );
    assert!(s.contains("alice"));
}
