//! Overhead of httpfleet against each client used directly, measured in one run on the same
//! loopback server: a keep-alive `GET /small` (13-byte body) over one reused connection.
//!
//! For every backend: `direct` (the client as its docs show it), `direct_timeout` (the client
//! with the same total deadline set its own way, as a production user would), and `httpfleet`
//! (the same client behind `httpfleet::Client`). Both sides send the same request headers
//! (`user-agent`, `accept`, `accept-encoding`), so the difference is the abstraction alone.
//!
//! Run: `cargo bench --bench overhead --all-features` (divan; `-- hyper` filters).

use std::io::Read;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use bytes::Bytes;
use divan::Bencher;
use http_body_util::{BodyExt, Empty};
use httpfleet::bench::BenchServer;
use httpfleet::{BackendKind, Client, Config};

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    divan::main();
}

static SERVER: LazyLock<BenchServer> =
    LazyLock::new(|| BenchServer::start(1).expect("bench server"));
static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
});

const TIMEOUT: Duration = Duration::from_secs(30);
const UA: &str = httpfleet::DEFAULT_USER_AGENT;

fn url() -> String {
    SERVER.url("/small")
}

fn config(kind: BackendKind) -> Config {
    Config::default().backend(kind).timeout(TIMEOUT)
}

fn check(body: &[u8]) {
    assert_eq!(body, httpfleet::bench::SMALL);
}

mod hyper {
    use super::*;
    use hyper_util::client::legacy::Client as Legacy;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    fn direct_client() -> Legacy<HttpConnector, Empty<Bytes>> {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        Legacy::builder(TokioExecutor::new()).build(http)
    }

    fn request(uri: &http::Uri) -> http::Request<Empty<Bytes>> {
        http::Request::get(uri.clone())
            .header("user-agent", UA)
            .header("accept", "*/*")
            .header("accept-encoding", "gzip, deflate")
            .body(Empty::new())
            .unwrap()
    }

    #[divan::bench]
    fn direct(b: Bencher) {
        let client = direct_client();
        let uri: http::Uri = url().parse().unwrap();
        b.bench_local(|| {
            RT.block_on(async {
                let resp = client.request(request(&uri)).await.unwrap();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                check(&body);
            })
        });
    }

    #[divan::bench]
    fn direct_timeout(b: Bencher) {
        let client = direct_client();
        let uri: http::Uri = url().parse().unwrap();
        b.bench_local(|| {
            RT.block_on(async {
                tokio::time::timeout(TIMEOUT, async {
                    let resp = client.request(request(&uri)).await.unwrap();
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    check(&body);
                })
                .await
                .unwrap()
            })
        });
    }

    #[divan::bench]
    fn httpfleet(b: Bencher) {
        let client = Client::from_config(&config(BackendKind::Hyper)).unwrap();
        let url = url();
        b.bench_local(|| {
            RT.block_on(async { check(client.get(&url).send().await.unwrap().bytes()) })
        });
    }

    #[divan::bench]
    fn httpfleet_blocking(b: Bencher) {
        let client = httpfleet::blocking::Client::from_config(&config(BackendKind::Hyper)).unwrap();
        let url = url();
        b.bench_local(|| check(client.get(&url).send().unwrap().bytes()));
    }
}

mod reqwest {
    use super::*;

    fn direct_client(timeout: Option<Duration>) -> ::reqwest::Client {
        let mut b = ::reqwest::Client::builder().tcp_nodelay(true).no_proxy();
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    fn get(client: &::reqwest::Client, url: &str) {
        RT.block_on(async {
            let resp = client
                .get(url)
                .header("user-agent", UA)
                .header("accept", "*/*")
                .header("accept-encoding", "gzip, deflate")
                .send()
                .await
                .unwrap();
            check(&resp.bytes().await.unwrap());
        })
    }

    #[divan::bench]
    fn direct(b: Bencher) {
        let client = direct_client(None);
        let url = url();
        b.bench_local(|| get(&client, &url));
    }

    #[divan::bench]
    fn direct_timeout(b: Bencher) {
        let client = direct_client(Some(TIMEOUT));
        let url = url();
        b.bench_local(|| get(&client, &url));
    }

    #[divan::bench]
    fn httpfleet(b: Bencher) {
        let client = Client::from_config(&config(BackendKind::Reqwest)).unwrap();
        let url = url();
        b.bench_local(|| {
            RT.block_on(async { check(client.get(&url).send().await.unwrap().bytes()) })
        });
    }

    #[divan::bench]
    fn httpfleet_blocking(b: Bencher) {
        let client =
            httpfleet::blocking::Client::from_config(&config(BackendKind::Reqwest)).unwrap();
        let url = url();
        b.bench_local(|| check(client.get(&url).send().unwrap().bytes()));
    }
}

mod curl {
    use super::*;
    use ::curl::easy::{Easy2, Handler, List, WriteError};

    struct Collect(Vec<u8>);
    impl Handler for Collect {
        fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
            self.0.extend_from_slice(data);
            Ok(data.len())
        }
    }

    fn easy(timeout: Option<Duration>) -> Easy2<Collect> {
        let mut e = Easy2::new(Collect(Vec::new()));
        e.url(&url()).unwrap();
        e.tcp_nodelay(true).unwrap();
        e.proxy("").unwrap();
        let mut list = List::new();
        list.append(&format!("user-agent: {UA}")).unwrap();
        list.append("accept: */*").unwrap();
        list.append("accept-encoding: gzip, deflate").unwrap();
        e.http_headers(list).unwrap();
        if let Some(t) = timeout {
            e.timeout(t).unwrap();
        }
        e
    }

    fn perform(e: &mut Easy2<Collect>) {
        e.get_mut().0.clear();
        e.perform().unwrap();
        check(&e.get_ref().0);
    }

    #[divan::bench]
    fn direct(b: Bencher) {
        let mut e = easy(None);
        b.bench_local(|| perform(&mut e));
    }

    #[divan::bench]
    fn direct_timeout(b: Bencher) {
        let mut e = easy(Some(TIMEOUT));
        b.bench_local(|| perform(&mut e));
    }

    /// The idiomatic async use of a blocking client: a reused handle on tokio's blocking pool.
    #[divan::bench]
    fn direct_async(b: Bencher) {
        let pool = Arc::new(Mutex::new(vec![easy(Some(TIMEOUT))]));
        b.bench_local(|| {
            RT.block_on(async {
                let pool = pool.clone();
                tokio::task::spawn_blocking(move || {
                    let mut e = pool.lock().unwrap().pop().unwrap();
                    perform(&mut e);
                    pool.lock().unwrap().push(e);
                })
                .await
                .unwrap()
            })
        });
    }

    #[divan::bench]
    fn httpfleet(b: Bencher) {
        let client = Client::from_config(&config(BackendKind::Curl)).unwrap();
        let url = url();
        b.bench_local(|| {
            RT.block_on(async { check(client.get(&url).send().await.unwrap().bytes()) })
        });
    }

    #[divan::bench]
    fn httpfleet_blocking(b: Bencher) {
        let client = httpfleet::blocking::Client::from_config(&config(BackendKind::Curl)).unwrap();
        let url = url();
        b.bench_local(|| check(client.get(&url).send().unwrap().bytes()));
    }
}

mod ureq {
    use super::*;

    fn agent(timeout: Option<Duration>) -> ::ureq::Agent {
        ::ureq::Agent::config_builder()
            .proxy(None)
            .timeout_global(timeout)
            .build()
            .new_agent()
    }

    fn get(agent: &::ureq::Agent, url: &str) {
        let mut resp = agent
            .get(url)
            .header("user-agent", UA)
            .header("accept", "*/*")
            .header("accept-encoding", "gzip, deflate")
            .call()
            .unwrap();
        let mut body = Vec::new();
        resp.body_mut().as_reader().read_to_end(&mut body).unwrap();
        check(&body);
    }

    #[divan::bench]
    fn direct(b: Bencher) {
        let agent = agent(None);
        let url = url();
        b.bench_local(|| get(&agent, &url));
    }

    #[divan::bench]
    fn direct_timeout(b: Bencher) {
        let agent = agent(Some(TIMEOUT));
        let url = url();
        b.bench_local(|| get(&agent, &url));
    }

    #[divan::bench]
    fn httpfleet(b: Bencher) {
        let client = Client::from_config(&config(BackendKind::Ureq)).unwrap();
        let url = url();
        b.bench_local(|| {
            RT.block_on(async { check(client.get(&url).send().await.unwrap().bytes()) })
        });
    }

    #[divan::bench]
    fn httpfleet_blocking(b: Bencher) {
        let client = httpfleet::blocking::Client::from_config(&config(BackendKind::Ureq)).unwrap();
        let url = url();
        b.bench_local(|| check(client.get(&url).send().unwrap().bytes()));
    }
}
