//! The fleet: every strategy, the breaker and the retry policy, transition by transition on the
//! mock backend under tokio's paused clock (no real sleeps); then real backends on loopback.

mod support;

use std::time::Duration;

use httpfleet::backend::{MockBackend, MockReply};
use httpfleet::fleet::{
    BreakerConfig, BreakerState, BudgetConfig, Classifier, HedgeDelay, RetryPolicy,
};
use httpfleet::{Backend, BackendKind, Client, Config, ErrorKind, FleetBuilder, Member, Strategy};
use tokio::time::Instant;

fn config() -> Config {
    Config::default()
        .backend(BackendKind::Mock)
        .timeout(Duration::from_secs(10))
}

fn member(mock: &MockBackend, name: &str) -> Member {
    Member::with_backend(Backend::from(mock.clone())).name(name)
}

/// A fleet over mocks, with an unlimited budget and a breaker that stays closed unless a test
/// sets its own.
fn fleet(mocks: &[&MockBackend], strategy: Strategy) -> FleetBuilder {
    of_members(
        strategy,
        mocks
            .iter()
            .enumerate()
            .map(|(i, m)| member(m, &format!("m{i}"))),
    )
}

/// [`fleet`] over mocks standing for hosts: (mock, member name, base URL).
fn on_hosts(hosts: &[(&MockBackend, &str, &str)], strategy: Strategy) -> FleetBuilder {
    of_members(
        strategy,
        hosts
            .iter()
            .map(|(m, name, base)| member(m, name).base_url(*base)),
    )
}

fn of_members(strategy: Strategy, members: impl IntoIterator<Item = Member>) -> FleetBuilder {
    members.into_iter().fold(
        FleetBuilder::new(&config())
            .strategy(strategy)
            .retry(RetryPolicy::default().budget(BudgetConfig::unlimited()))
            .breaker(BreakerConfig::disabled()),
        FleetBuilder::member,
    )
}

/// The text of a response, or the error that came instead.
async fn text_of(r: httpfleet::Result<httpfleet::Response>) -> httpfleet::Result<String> {
    r?.text().await
}

async fn get(c: &Client) -> httpfleet::Result<httpfleet::Response> {
    c.get("http://exchange.test/api").send().await
}

mod strategies {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn after_a_redirect_and_a_failure_the_next_member_is_sent_the_callers_request() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(MockReply::status(307).header("location", "/moved"))
            .push(MockReply::status(503));
        let hosts = [(&a, "a", "http://a.test"), (&b, "b", "http://b.test")];
        let c = on_hosts(&hosts, Strategy::Failover).build().unwrap();
        let resp = c.put("/api?x=1").body("order").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.member(), Some("b"));
        let sent_to_a: Vec<String> = a.requests().iter().map(|r| r.url().to_string()).collect();
        assert_eq!(sent_to_a, ["http://a.test/api?x=1", "http://a.test/moved"]);
        let to_b = &b.requests()[0];
        assert_eq!(to_b.url(), "http://b.test/api?x=1");
        assert_eq!(to_b.method(), "PUT");
        assert_eq!(to_b.body(), b"order");
    }

    #[tokio::test(start_paused = true)]
    async fn failover_moves_to_the_next_member_on_failure() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::status(503));
        let c = fleet(&[&a, &b], Strategy::Failover).build().unwrap();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.member(), Some("m1"));
        assert_eq!(resp.attempts(), 2);
        assert_eq!((a.request_count(), b.request_count()), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn failover_stays_on_a_healthy_first_member() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        let c = fleet(&[&a, &b], Strategy::Failover).build().unwrap();
        for _ in 0..5 {
            assert_eq!(get(&c).await.unwrap().member(), Some("m0"));
        }
        assert_eq!((a.request_count(), b.request_count()), (5, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn single_retries_the_same_member() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(MockReply::status(502)).push(MockReply::status(200));
        let c = fleet(&[&a, &b], Strategy::Single).build().unwrap();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.attempts(), 2);
        assert_eq!((a.request_count(), b.request_count()), (2, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn round_robin_rotates_over_every_member() {
        let mocks = [MockBackend::new(), MockBackend::new(), MockBackend::new()];
        let c = fleet(&[&mocks[0], &mocks[1], &mocks[2]], Strategy::RoundRobin)
            .build()
            .unwrap();
        let mut names = Vec::new();
        for _ in 0..6 {
            names.push(get(&c).await.unwrap().member().unwrap().to_owned());
        }
        assert_eq!(names, ["m0", "m1", "m2", "m0", "m1", "m2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn round_robin_skips_a_member_whose_breaker_is_open() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::status(503));
        let breaker = BreakerConfig::default()
            .consecutive_failures(1)
            .cooldown(Duration::from_secs(60));
        let c = fleet(&[&a, &b], Strategy::RoundRobin)
            .breaker(breaker)
            .build()
            .unwrap();
        for _ in 0..6 {
            assert_eq!(get(&c).await.unwrap().status(), 200);
        }
        assert_eq!(
            a.request_count(),
            1,
            "open after its first failure, then skipped"
        );
        assert_eq!(c.stats()[0].breaker, BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn random_is_repeatable_with_a_seed() {
        let run = || async {
            let mocks = [MockBackend::new(), MockBackend::new(), MockBackend::new()];
            let c = fleet(
                &[&mocks[0], &mocks[1], &mocks[2]],
                Strategy::Random { seed: Some(42) },
            )
            .build()
            .unwrap();
            let mut names = Vec::new();
            for _ in 0..30 {
                names.push(get(&c).await.unwrap().member().unwrap().to_owned());
            }
            names
        };
        let (x, y) = (run().await, run().await);
        assert_eq!(x, y);
        for m in ["m0", "m1", "m2"] {
            assert!(x.iter().any(|n| n == m), "{m} never picked in {x:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn adaptive_prefers_the_faster_member() {
        let (slow, fast) = (MockBackend::new(), MockBackend::new());
        slow.fallback(MockReply::ok("slow").delay(Duration::from_millis(40)));
        fast.fallback(MockReply::ok("fast").delay(Duration::from_millis(2)));
        let c = fleet(&[&slow, &fast], Strategy::adaptive())
            .build()
            .unwrap();
        for _ in 0..200 {
            get(&c).await.unwrap();
        }
        assert!(
            fast.request_count() > 150,
            "fast {} slow {}",
            fast.request_count(),
            slow.request_count()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn members_with_base_urls_rotate_over_hosts() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        let c = FleetBuilder::new(&config())
            .member(Member::with_backend(Backend::from(a.clone())).base_url("https://api1.test"))
            .member(
                Member::with_backend(Backend::from(b.clone())).base_url("https://api2.test/v3/"),
            )
            .strategy(Strategy::RoundRobin)
            .build()
            .unwrap();
        let r1 = c.get("/klines?symbol=BTC").send().await.unwrap();
        let r2 = c
            .get("http://ignored.test/klines?symbol=ETH")
            .send()
            .await
            .unwrap();
        assert_eq!(r1.member(), Some("mock@api1.test"));
        assert_eq!(a.requests()[0].url(), "https://api1.test/klines?symbol=BTC");
        assert_eq!(
            b.requests()[0].url(),
            "https://api2.test/v3/klines?symbol=ETH"
        );
        assert_eq!(r2.url(), "https://api2.test/v3/klines?symbol=ETH");
    }

    #[test]
    fn a_base_url_must_be_absolute_and_without_credentials() {
        let a = MockBackend::new();
        for (base, kind) in [
            ("/api", ErrorKind::InvalidUrl),
            ("ftp://api.test", ErrorKind::InvalidUrl),
            ("https://user:pw@api.test", ErrorKind::Builder),
        ] {
            let err = FleetBuilder::new(&config())
                .member(Member::with_backend(Backend::from(a.clone())).base_url(base))
                .build()
                .unwrap_err();
            assert_eq!(err.kind(), kind, "{base}");
            assert!(!err.to_string().contains("pw@"), "{err}");
        }
        let err = FleetBuilder::new(&config()).build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Builder, "a fleet needs a member");
    }

    #[tokio::test]
    async fn relative_url_without_base_is_invalid() {
        let a = MockBackend::new();
        let c = fleet(&[&a], Strategy::Failover).build().unwrap();
        let err = c.get("/x").send().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidUrl);
        let single = Client::with_backend(Backend::from(a.clone()), &config()).unwrap();
        assert_eq!(
            single.get("/x").send().await.unwrap_err().kind(),
            ErrorKind::InvalidUrl
        );
        assert_eq!(a.request_count(), 0);
    }
}

mod classification {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limits_never_fail_over() {
        for status in [429, 418] {
            let (a, b) = (MockBackend::new(), MockBackend::new());
            a.push(MockReply::status(status).header("retry-after", "7"));
            let c = fleet(&[&a, &b], Strategy::Failover).build().unwrap();
            let resp = get(&c).await.unwrap();
            assert_eq!(resp.status(), status);
            assert_eq!(resp.retry_after(), Some(Duration::from_secs(7)));
            assert_eq!(resp.attempts(), 1);
            assert_eq!(b.request_count(), 0, "{status} went to another member");
            assert_eq!(c.stats()[0].rate_limited, 1);
            assert_eq!(c.stats()[0].failures, 0);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn other_4xx_are_answers_not_failures() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(MockReply::status(404));
        let c = fleet(&[&a, &b], Strategy::Failover).build().unwrap();
        assert_eq!(get(&c).await.unwrap().status(), 404);
        assert_eq!(b.request_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn failure_statuses_are_configurable() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(MockReply::status(500));
        let c = fleet(&[&a, &b], Strategy::Failover)
            .classifier(Classifier::default().failure_statuses([500]))
            .build()
            .unwrap();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.member(), Some("m1"));
    }

    #[tokio::test(start_paused = true)]
    async fn bad_input_errors_are_returned_at_once() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(MockReply::error(ErrorKind::BodyTooLarge));
        let c = fleet(&[&a, &b], Strategy::Failover).build().unwrap();
        assert_eq!(get(&c).await.unwrap_err().kind(), ErrorKind::BodyTooLarge);
        assert_eq!(b.request_count(), 0);
    }
}

mod retries {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn attempts_are_capped() {
        let a = MockBackend::new();
        a.fallback(MockReply::status(503));
        let c = fleet(&[&a], Strategy::Single)
            .retry(
                RetryPolicy::default()
                    .max_attempts(4)
                    .budget(BudgetConfig::unlimited()),
            )
            .build()
            .unwrap();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.status(), 503, "the last failed response is returned");
        assert_eq!(resp.attempts(), 4);
        assert_eq!(a.request_count(), 4);
        let c = fleet(&[&a], Strategy::Single)
            .retry(
                RetryPolicy::default()
                    .max_attempts(50)
                    .budget(BudgetConfig::unlimited()),
            )
            .build()
            .unwrap();
        assert_eq!(get(&c).await.unwrap().attempts(), 5, "never more than 5");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_is_jittered_and_capped() {
        let a = MockBackend::new();
        a.fallback(MockReply::status(503));
        let c = fleet(&[&a], Strategy::Single)
            .retry(
                RetryPolicy::default()
                    .max_attempts(5)
                    .backoff(Duration::from_millis(100), Duration::from_millis(300))
                    .budget(BudgetConfig::unlimited()),
            )
            .build()
            .unwrap();
        let start = Instant::now();
        get(&c).await.unwrap();
        // Four waits of at most 100, 200, 300, 300 ms.
        assert!(
            start.elapsed() <= Duration::from_millis(900),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_within_the_cap() {
        let a = MockBackend::new();
        a.push(MockReply::status(503).header("retry-after", "1"))
            .push(MockReply::ok("back"));
        let c = fleet(&[&a], Strategy::Single).build().unwrap();
        let start = Instant::now();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "back");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_clamped_to_the_cap() {
        let a = MockBackend::new();
        a.push(MockReply::status(503).header("retry-after", "3600"))
            .push(MockReply::ok("back"));
        let c = fleet(&[&a], Strategy::Single).build().unwrap();
        let start = Instant::now();
        get(&c).await.unwrap();
        assert_eq!(start.elapsed(), RetryPolicy::default().cap);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_past_the_deadline_ends_the_request_now() {
        let a = MockBackend::new();
        a.push(MockReply::status(503).header("retry-after", "5"))
            .push(MockReply::ok("too late"));
        let c = FleetBuilder::new(&config().timeout(Duration::from_secs(2)))
            .member(member(&a, "m0"))
            .retry(
                RetryPolicy::default().backoff(Duration::from_millis(10), Duration::from_secs(30)),
            )
            .build()
            .unwrap();
        let start = Instant::now();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "no wait that cannot fit the deadline"
        );
        assert_eq!(a.request_count(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn non_idempotent_methods_are_not_retried_unless_asked() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::status(503));
        let c = fleet(&[&a, &b], Strategy::Failover).build().unwrap();
        let resp = c
            .post("http://exchange.test/order")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
        assert_eq!(b.request_count(), 0);
        let c = fleet(&[&a, &b], Strategy::Failover)
            .retry(
                RetryPolicy::default()
                    .retry_non_idempotent(true)
                    .budget(BudgetConfig::unlimited()),
            )
            .build()
            .unwrap();
        let resp = c
            .post("http://exchange.test/order")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }

    #[tokio::test(start_paused = true)]
    async fn unsent_requests_are_retried_transparently_and_not_counted() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::error(ErrorKind::Connect));
        let c = fleet(&[&a, &b], Strategy::Failover)
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        // A POST, no retries allowed: a refused connection never carried it, so it moves on.
        let resp = c
            .post("http://exchange.test/order")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.member(), Some("m1"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_budget_stops_retries() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::status(503));
        let none = BudgetConfig::empty();
        let c = fleet(&[&a, &b], Strategy::Failover)
            .retry(RetryPolicy::default().budget(none))
            .build()
            .unwrap();
        assert_eq!(get(&c).await.unwrap().status(), 503);
        assert_eq!(b.request_count(), 0);
        assert_eq!(c.retry_budget(), Some(0.0));
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_refills_per_request_and_per_second() {
        let a = MockBackend::new();
        a.fallback(MockReply::status(503));
        let budget = BudgetConfig::new(0.5, 1.0, 10.0);
        let c = fleet(&[&a], Strategy::Single)
            .retry(RetryPolicy::default().max_attempts(2).budget(budget))
            .build()
            .unwrap();
        // Starts with 1 token; every request deposits 0.5; every retry takes 1.
        // (plus 1 per second of the backoff, at most 50 ms here).
        get(&c).await.unwrap();
        let left = c.retry_budget().unwrap();
        assert!((0.5..0.56).contains(&left), "{left}");
        tokio::time::advance(Duration::from_secs(2)).await;
        let later = c.retry_budget().unwrap();
        assert!((later - left - 2.0).abs() < 0.001, "{left} -> {later}");
    }

    #[tokio::test(start_paused = true)]
    async fn one_deadline_spans_every_attempt_and_the_error_tells_each() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::error(ErrorKind::Protocol).delay(Duration::from_millis(700)));
        b.fallback(MockReply::ok("late").delay(Duration::from_secs(5)));
        let c = FleetBuilder::new(&config().timeout(Duration::from_secs(1)))
            .member(member(&a, "a"))
            .member(member(&b, "b"))
            .retry(
                RetryPolicy::default().backoff(Duration::from_millis(1), Duration::from_millis(1)),
            )
            .build()
            .unwrap();
        let start = Instant::now();
        let err = get(&c).await.unwrap_err();
        assert!(err.is_timeout(), "{err:?}");
        assert!(
            start.elapsed() <= Duration::from_millis(1001),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(err.attempts(), 2);
        let history: Vec<_> = err.history().iter().map(|a| a.member.as_str()).collect();
        assert_eq!(history, ["a", "b"]);
        let text = err.to_string();
        assert!(
            text.contains("after 2 attempts") && text.contains("a: HTTP protocol error"),
            "{text}"
        );
    }
}

mod breaker {
    use super::*;

    fn breaker() -> BreakerConfig {
        BreakerConfig::default()
            .consecutive_failures(3)
            .cooldown(Duration::from_secs(10))
            .half_open_trials(1)
    }

    /// One member whose breaker opens on a failure rate of 50% over 10 calls only.
    fn rate_only(a: &MockBackend) -> Client {
        fleet(&[a], Strategy::Single)
            .retry(RetryPolicy::none())
            .breaker(
                BreakerConfig::default()
                    .consecutive_failures(100)
                    .failure_rate(0.5, 10, 10),
            )
            .build()
            .unwrap()
    }

    fn single(a: &MockBackend) -> Client {
        fleet(&[a], Strategy::Single)
            .retry(RetryPolicy::none())
            .breaker(breaker())
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_refuses_without_sending() {
        let a = MockBackend::new();
        a.fallback(MockReply::status(503));
        let c = single(&a);
        for _ in 0..3 {
            assert_eq!(get(&c).await.unwrap().status(), 503);
        }
        assert_eq!(c.stats()[0].breaker, BreakerState::Open);
        let err = get(&c).await.unwrap_err();
        assert!(err.to_string().contains("circuit breaker is open"), "{err}");
        assert_eq!(a.request_count(), 3, "nothing sent while open");
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_consecutive_count() {
        let a = MockBackend::new();
        for _ in 0..2 {
            a.push(MockReply::status(503));
        }
        a.push(MockReply::ok("ok"));
        for _ in 0..2 {
            a.push(MockReply::status(503));
        }
        let c = single(&a);
        for _ in 0..5 {
            get(&c).await.unwrap();
        }
        assert_eq!(c.stats()[0].breaker, BreakerState::Closed);
    }

    /// A window full of successes lets calls skip the breaker's lock; failures after it must
    /// still count, by both rules.
    #[tokio::test(start_paused = true)]
    async fn a_window_full_of_successes_still_opens_on_failures() {
        let a = MockBackend::new();
        for _ in 0..30 {
            a.push(MockReply::ok("ok"));
        }
        for _ in 0..3 {
            a.push(MockReply::status(503));
        }
        let c = single(&a);
        for _ in 0..30 {
            assert_eq!(get(&c).await.unwrap().status(), 200);
        }
        assert_eq!(c.stats()[0].breaker, BreakerState::Closed);
        for _ in 0..3 {
            assert_eq!(get(&c).await.unwrap().status(), 503);
        }
        assert_eq!(c.stats()[0].breaker, BreakerState::Open);

        let b = MockBackend::new();
        for i in 0..40 {
            b.push(if i < 20 || i % 2 == 0 {
                MockReply::ok("")
            } else {
                MockReply::status(503)
            });
        }
        let c = rate_only(&b);
        let mut opened_after = None;
        for n in 1..=40 {
            get(&c).await.unwrap();
            if c.stats()[0].breaker == BreakerState::Open {
                opened_after = Some(n);
                break;
            }
        }
        // 20 successes, then alternating: the window of 10 reaches half failures at call 30.
        assert_eq!(opened_after, Some(30));
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_failure_rate_over_the_window() {
        let a = MockBackend::new();
        for i in 0..10 {
            a.push(if i % 2 == 0 {
                MockReply::status(503)
            } else {
                MockReply::ok("")
            });
        }
        let c = rate_only(&a);
        for _ in 0..9 {
            get(&c).await.unwrap();
        }
        assert_eq!(
            c.stats()[0].breaker,
            BreakerState::Closed,
            "below min_calls"
        );
        get(&c).await.unwrap();
        assert_eq!(c.stats()[0].breaker, BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_slow_call_rate() {
        let a = MockBackend::new();
        a.fallback(MockReply::ok("").delay(Duration::from_millis(300)));
        let c = fleet(&[&a], Strategy::Single)
            .retry(RetryPolicy::none())
            .breaker(
                BreakerConfig::default()
                    .slow_calls(Duration::from_millis(200), 0.8)
                    .failure_rate(0.5, 5, 5),
            )
            .build()
            .unwrap();
        for _ in 0..5 {
            get(&c).await.unwrap();
        }
        assert_eq!(c.stats()[0].breaker, BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_trial_success_closes() {
        let a = MockBackend::new();
        for _ in 0..3 {
            a.push(MockReply::status(503));
        }
        let c = single(&a);
        for _ in 0..3 {
            get(&c).await.unwrap();
        }
        assert_eq!(c.stats()[0].breaker, BreakerState::Open);
        tokio::time::advance(Duration::from_secs(8)).await;
        assert_eq!(
            c.stats()[0].breaker,
            BreakerState::Open,
            "cooldown is at least 80% of 10 s"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(
            c.stats()[0].breaker,
            BreakerState::HalfOpen,
            "and at most 120%"
        );
        assert_eq!(get(&c).await.unwrap().status(), 200);
        assert_eq!(c.stats()[0].breaker, BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_trial_failure_reopens() {
        let a = MockBackend::new();
        a.fallback(MockReply::status(503));
        let c = single(&a);
        for _ in 0..3 {
            get(&c).await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(13)).await;
        get(&c).await.unwrap();
        assert_eq!(c.stats()[0].breaker, BreakerState::Open);
        assert_eq!(a.request_count(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_only_the_trials() {
        let a = MockBackend::new();
        for _ in 0..3 {
            a.push(MockReply::status(503));
        }
        a.fallback(MockReply::ok("slow").delay(Duration::from_secs(1)));
        let c = single(&a);
        for _ in 0..3 {
            get(&c).await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(13)).await;
        let (first, second) = tokio::join!(get(&c), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            get(&c).await
        });
        assert_eq!(first.unwrap().status(), 200);
        assert!(second.is_err(), "a second concurrent trial is refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_canceled_trial_releases_its_permit() {
        let a = MockBackend::new();
        for _ in 0..3 {
            a.push(MockReply::status(503));
        }
        a.push(MockReply::ok("never seen").delay(Duration::from_secs(60)));
        a.push(MockReply::ok("second trial"));
        let c = single(&a);
        for _ in 0..3 {
            get(&c).await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(13)).await;
        // The trial request is dropped midway.
        let dropped = tokio::time::timeout(Duration::from_millis(100), get(&c)).await;
        assert!(dropped.is_err());
        assert_eq!(c.stats()[0].breaker, BreakerState::HalfOpen);
        assert_eq!(c.stats()[0].canceled, 1);
        // Not stuck half-open: the next request is admitted as a trial and closes it.
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "second trial");
        assert_eq!(c.stats()[0].breaker, BreakerState::Closed);
    }
}

/// A breaker's half-open periods are generations: a trial admitted in an earlier period,
/// ending in a later one, counts for nothing in it.
mod breaker_generations {
    use super::*;

    /// A request with a deadline past every trial's delay.
    async fn get(c: &Client) -> httpfleet::Result<httpfleet::Response> {
        c.get("http://exchange.test/api")
            .timeout(Duration::from_secs(120))
            .send()
            .await
    }

    fn two_trials(a: &MockBackend) -> Client {
        fleet(&[a], Strategy::Single)
            .retry(RetryPolicy::none())
            .breaker(
                BreakerConfig::default()
                    .consecutive_failures(3)
                    .cooldown(Duration::from_secs(10))
                    .half_open_trials(2),
            )
            .build()
            .unwrap()
    }

    /// Opens the breaker, then starts trial `A` of the first half-open period (slow, still in
    /// flight) and fails trial `B`, which opens the breaker again; then waits for the second
    /// half-open period and starts its trial `C`. `A` is `a`, run as `run_a` wants.
    async fn into_a_second_half_open_period<F>(
        c: &Client,
        run_a: impl FnOnce(Client) -> F,
    ) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        for _ in 0..3 {
            assert_eq!(get(c).await.unwrap().status(), 503);
        }
        tokio::time::advance(Duration::from_secs(13)).await;
        let a = tokio::spawn(run_a(c.clone()));
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(get(c).await.unwrap().status(), 503, "trial B");
        assert_eq!(c.stats()[0].breaker, BreakerState::Open);
        tokio::time::advance(Duration::from_secs(13)).await;
        assert_eq!(c.stats()[0].breaker, BreakerState::HalfOpen);
        a
    }

    #[tokio::test(start_paused = true)]
    async fn a_trial_from_an_earlier_half_open_period_cannot_close_the_breaker() {
        let a = MockBackend::new();
        for _ in 0..3 {
            a.push(MockReply::status(503));
        }
        a.push(MockReply::ok("A").delay(Duration::from_secs(20)))
            .push(MockReply::status(503))
            .push(MockReply::ok("C").delay(Duration::from_secs(10)))
            .push(MockReply::ok("D"));
        let c = two_trials(&a);
        // A ends at 33 s, in the second period (from 26 s); C ends at 36 s.
        let trial_a =
            into_a_second_half_open_period(&c, |c| async move { text_of(get(&c).await).await })
                .await;
        let trial_c = {
            let c = c.clone();
            tokio::spawn(async move { text_of(get(&c).await).await })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::time::advance(Duration::from_secs(7)).await;
        assert_eq!(trial_a.await.unwrap().unwrap(), "A");
        assert_eq!(get(&c).await.unwrap().text().await.unwrap(), "D");
        assert_eq!(
            c.stats()[0].breaker,
            BreakerState::HalfOpen,
            "one success of this period (D) and a stale one (A) closed a breaker that needs two"
        );
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(trial_c.await.unwrap().unwrap(), "C");
        assert_eq!(c.stats()[0].breaker, BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_canceled_trial_from_an_earlier_half_open_period_frees_no_slot() {
        let a = MockBackend::new();
        for _ in 0..3 {
            a.push(MockReply::status(503));
        }
        a.push(MockReply::ok("A").delay(Duration::from_secs(60)))
            .push(MockReply::status(503))
            .push(MockReply::ok("C").delay(Duration::from_secs(10)))
            .push(MockReply::ok("D").delay(Duration::from_secs(5)))
            .push(MockReply::ok("E"));
        let c = two_trials(&a);
        // A is dropped at 30 s, in the second period, while C holds one of its two slots.
        let trial_a = into_a_second_half_open_period(&c, |c| async move {
            tokio::time::timeout(Duration::from_secs(17), get(&c))
                .await
                .is_err()
        })
        .await;
        let _trial_c = {
            let c = c.clone();
            tokio::spawn(async move { text_of(get(&c).await).await })
        };
        tokio::time::sleep(Duration::from_millis(1)).await;
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(trial_a.await.unwrap(), "A was dropped");
        let (d, e) = tokio::join!(get(&c), async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            get(&c).await
        });
        assert_eq!(d.unwrap().text().await.unwrap(), "D");
        let e = e.expect_err("a third trial was admitted: the stale A freed C's slot");
        assert!(e.to_string().contains("circuit breaker is open"), "{e}");
    }
}

/// Durations up to `Duration::MAX` in a fleet's policies (hedge delay, backoff, cooldown,
/// decay) and a `Retry-After` of `u64::MAX` seconds are clamped, never a panic.
mod huge_numbers {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn durations_past_any_deadline_never_panic() {
        let max = Duration::MAX;
        for strategy in [
            Strategy::Failover,
            Strategy::hedged(max),
            Strategy::Hedged {
                delay: HedgeDelay::Percentile {
                    quantile: 0.9,
                    floor: max,
                },
                max_extra: 3,
            },
            Strategy::Adaptive { decay: max },
        ] {
            let (a, b) = (MockBackend::new(), MockBackend::new());
            a.push(MockReply::status(503).header("retry-after", "18446744073709551615"));
            let c = fleet(&[&a, &b], strategy.clone())
                .retry(
                    RetryPolicy::default()
                        .backoff(max, max)
                        .budget(BudgetConfig::unlimited()),
                )
                .breaker(
                    BreakerConfig::default()
                        .consecutive_failures(1)
                        .cooldown(max)
                        .slow_calls(max, 0.5),
                )
                .build()
                .unwrap();
            let resp = c
                .get("http://exchange.test/api")
                .timeout(max)
                .send()
                .await
                .unwrap();
            // The server's wait (clamped) is past the request's deadline (clamped): the
            // answer comes back as it is, or from the other member.
            assert!([200, 503].contains(&resp.status().as_u16()), "{strategy:?}");
            let resp = get(&c).await.unwrap();
            assert_eq!(resp.status(), 200, "{strategy:?}");
        }
    }
}

mod hedging {
    use super::*;

    /// Hosts `a.test` (answering "primary" in 100 ms) and `b_base` (answering "hedge" at once)
    /// behind a fleet that hedges after 20 ms.
    fn slow_primary_and_quick_hedge(b_base: &str) -> (MockBackend, MockBackend, Client) {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::ok("primary").delay(Duration::from_millis(100)));
        b.fallback(MockReply::ok("hedge"));
        let hosts = [(&a, "a", "http://a.test"), (&b, "b", b_base)];
        let c = on_hosts(&hosts, Strategy::hedged(Duration::from_millis(20)))
            .build()
            .unwrap();
        (a, b, c)
    }

    #[tokio::test(start_paused = true)]
    async fn a_hedge_to_another_host_is_sent_the_callers_path() {
        let (a, b, c) = slow_primary_and_quick_hedge("http://b.test/v2");
        let resp = c.get("/api?symbol=BTCUSDT").send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "hedge");
        assert_eq!(a.requests()[0].url(), "http://a.test/api?symbol=BTCUSDT");
        assert_eq!(b.requests()[0].url(), "http://b.test/v2/api?symbol=BTCUSDT");
    }

    /// A hedge is the caller's request on another member: its method, headers, body and own
    /// timeout too, not only its URL.
    #[tokio::test(start_paused = true)]
    async fn a_hedge_is_sent_the_callers_method_headers_body_and_timeout() {
        let (a, b, c) = slow_primary_and_quick_hedge("http://b.test");
        let resp = c
            .put("/order?id=7")
            .header("x-sig", "abc")
            .body("qty=1")
            .timeout(Duration::from_secs(3))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "hedge");
        let (primary, hedge) = (&a.requests()[0], &b.requests()[0]);
        for (req, url) in [
            (primary, "http://a.test/order?id=7"),
            (hedge, "http://b.test/order?id=7"),
        ] {
            assert_eq!(req.url(), url);
            assert_eq!(req.method(), http::Method::PUT);
            assert_eq!(req.headers()["x-sig"], "abc");
            assert_eq!(req.body(), b"qty=1");
            assert_eq!(req.timeout(), Some(Duration::from_secs(3)));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hedge_wins_when_the_primary_is_slow_and_the_loser_is_canceled() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::ok("primary").delay(Duration::from_millis(100)));
        b.fallback(MockReply::ok("hedge").delay(Duration::from_millis(5)));
        let c = fleet(&[&a, &b], Strategy::hedged(Duration::from_millis(20)))
            .build()
            .unwrap();
        let start = Instant::now();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.attempts(), 2);
        assert_eq!(
            resp.text().await.unwrap(),
            "hedge",
            "the winner's body is whole"
        );
        assert_eq!(start.elapsed(), Duration::from_millis(25));
        let stats = c.stats();
        assert_eq!((stats[0].canceled, stats[1].hedges), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn no_hedge_when_the_primary_answers_in_time() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::ok("primary").delay(Duration::from_millis(5)));
        let c = fleet(&[&a, &b], Strategy::hedged(Duration::from_millis(20)))
            .build()
            .unwrap();
        for _ in 0..10 {
            assert_eq!(get(&c).await.unwrap().text().await.unwrap(), "primary");
        }
        assert_eq!(b.request_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_primary_still_wins_if_it_answers_first_after_the_hedge_started() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::ok("primary").delay(Duration::from_millis(30)));
        b.fallback(MockReply::ok("hedge").delay(Duration::from_millis(50)));
        let c = fleet(&[&a, &b], Strategy::hedged(Duration::from_millis(20)))
            .build()
            .unwrap();
        assert_eq!(get(&c).await.unwrap().text().await.unwrap(), "primary");
        assert_eq!(c.stats()[1].canceled, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_new_hedge_when_the_budget_is_empty() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::ok("primary").delay(Duration::from_millis(100)));
        let none = BudgetConfig::empty();
        let c = fleet(&[&a, &b], Strategy::hedged(Duration::from_millis(20)))
            .retry(RetryPolicy::default().budget(none))
            .build()
            .unwrap();
        let start = Instant::now();
        assert_eq!(get(&c).await.unwrap().text().await.unwrap(), "primary");
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(100),
            "the primary ran to its end"
        );
        assert_eq!(b.request_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn up_to_max_extra_hedges_each_after_the_delay() {
        let mocks = [
            MockBackend::new(),
            MockBackend::new(),
            MockBackend::new(),
            MockBackend::new(),
        ];
        for m in &mocks[..3] {
            m.fallback(MockReply::ok("slow").delay(Duration::from_secs(1)));
        }
        mocks[3].fallback(MockReply::ok("fourth").delay(Duration::from_millis(1)));
        let c = fleet(
            &[&mocks[0], &mocks[1], &mocks[2], &mocks[3]],
            Strategy::Hedged {
                delay: HedgeDelay::Fixed(Duration::from_millis(10)),
                max_extra: 3,
            },
        )
        .build()
        .unwrap();
        let start = Instant::now();
        assert_eq!(get(&c).await.unwrap().text().await.unwrap(), "fourth");
        assert_eq!(start.elapsed(), Duration::from_millis(31));
        assert_eq!(c.stats().iter().map(|s| s.requests).sum::<u64>(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_primary_ends_a_hedged_request_without_a_hedge() {
        for status in [429, 418] {
            let (a, b) = (MockBackend::new(), MockBackend::new());
            a.fallback(
                MockReply::status(status)
                    .header("retry-after", "7")
                    .delay(Duration::from_millis(2)),
            );
            let c = fleet(&[&a, &b], Strategy::hedged(Duration::from_millis(50)))
                .build()
                .unwrap();
            let start = Instant::now();
            let resp = get(&c).await.unwrap();
            assert_eq!(resp.status(), status);
            assert_eq!(resp.retry_after(), Some(Duration::from_secs(7)));
            assert_eq!(resp.attempts(), 1);
            assert_eq!(start.elapsed(), Duration::from_millis(2));
            assert_eq!(b.request_count(), 0, "{status} started a hedge");
            assert_eq!(c.stats()[0].rate_limited, 1);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_after_the_hedge_started_ends_the_request_and_cancels_the_hedge() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::status(429).delay(Duration::from_millis(30)));
        b.fallback(MockReply::ok("hedge").delay(Duration::from_millis(100)));
        let c = fleet(&[&a, &b], Strategy::hedged(Duration::from_millis(20)))
            .build()
            .unwrap();
        let start = Instant::now();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.status(), 429);
        assert_eq!(start.elapsed(), Duration::from_millis(30));
        assert_eq!(resp.attempts(), 2, "the hedge was sent");
        let stats = c.stats();
        assert_eq!((stats[0].rate_limited, stats[1].hedges), (1, 1));
        assert_eq!(stats[1].canceled, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_primary_starts_the_hedge_at_once() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::status(503).delay(Duration::from_millis(2)));
        b.fallback(MockReply::ok("hedge").delay(Duration::from_millis(2)));
        let c = fleet(&[&a, &b], Strategy::hedged(Duration::from_millis(50)))
            .build()
            .unwrap();
        let start = Instant::now();
        assert_eq!(get(&c).await.unwrap().text().await.unwrap(), "hedge");
        assert_eq!(start.elapsed(), Duration::from_millis(4));
    }

    #[tokio::test(start_paused = true)]
    async fn percentile_delay_follows_observed_latency_above_its_floor() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        let c = fleet(
            &[&a, &b],
            Strategy::Hedged {
                delay: HedgeDelay::Percentile {
                    quantile: 0.9,
                    floor: Duration::from_millis(5),
                },
                max_extra: 1,
            },
        )
        .build()
        .unwrap();
        a.fallback(MockReply::ok("warm").delay(Duration::from_millis(30)));
        b.fallback(MockReply::ok("warm").delay(Duration::from_millis(30)));
        for _ in 0..25 {
            get(&c).await.unwrap();
        }
        // p90 is now ~30 ms: a 40 ms primary gets a hedge at ~30 ms, not at the 5 ms floor.
        let before = b.request_count();
        a.push(MockReply::ok("primary").delay(Duration::from_millis(40)));
        b.fallback(MockReply::ok("hedge").delay(Duration::from_millis(1)));
        let start = Instant::now();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "hedge");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(25) && took <= Duration::from_millis(35),
            "{took:?}"
        );
        assert_eq!(b.request_count(), before + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn non_idempotent_requests_are_never_hedged() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::ok("primary").delay(Duration::from_millis(100)));
        let c = fleet(&[&a, &b], Strategy::hedged(Duration::from_millis(10)))
            .build()
            .unwrap();
        let resp = c
            .post("http://exchange.test/order")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "primary");
        assert_eq!(b.request_count(), 0);
    }
}

/// `tracing` spans, one per attempt, recorded by a subscriber of the test's own.
mod traces {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// One span's name and fields, as text.
    type SpanFields = Vec<(String, String)>;

    /// Every span opened.
    #[derive(Default, Clone)]
    struct Spans(Arc<Mutex<Vec<SpanFields>>>);

    struct Fields<'a>(&'a mut SpanFields);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push((field.name().to_owned(), value.to_owned()));
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }
    }

    impl Subscriber for Spans {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, attrs: &Attributes<'_>) -> Id {
            let mut fields = vec![("name".to_owned(), attrs.metadata().name().to_owned())];
            attrs.record(&mut Fields(&mut fields));
            let mut spans = self.0.lock().unwrap();
            spans.push(fields);
            Id::from_u64(spans.len() as u64)
        }
        fn record(&self, _: &Id, values: &Record<'_>) {
            let mut fields = vec![("name".to_owned(), "record".to_owned())];
            values.record(&mut Fields(&mut fields));
            self.0.lock().unwrap().push(fields);
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut fields = vec![("name".to_owned(), "event".to_owned())];
            event.record(&mut Fields(&mut fields));
            self.0.lock().unwrap().push(fields);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    fn field<'a>(span: &'a [(String, String)], name: &str) -> &'a str {
        &span.iter().find(|(n, _)| n == name).expect(name).1
    }

    #[tokio::test(start_paused = true)]
    async fn each_attempt_is_a_span_with_its_member_number_outcome_and_latency() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::status(503));
        b.fallback(MockReply::ok("b").delay(Duration::from_millis(7)));
        let c = fleet(&[&a, &b], Strategy::Failover).build().unwrap();
        let spans = Spans::default();
        let _traced = tracing::subscriber::set_default(spans.clone());
        let resp = get(&c).await.unwrap();
        assert_eq!((resp.member(), resp.attempts()), (Some("m1"), 2));
        let spans = spans.0.lock().unwrap();
        let attempts: Vec<_> = spans
            .iter()
            .filter(|s| field(s, "name") == "httpfleet.attempt")
            .collect();
        assert_eq!(attempts.len(), 2, "{spans:?}");
        assert!(spans.iter().any(|s| field(s, "name") == "event"));
        assert_eq!(field(attempts[0], "member"), "m0");
        assert_eq!(field(attempts[0], "attempt"), "1");
        assert!(field(attempts[0], "outcome").starts_with("Failure"));
        assert_eq!(field(attempts[1], "member"), "m1");
        assert_eq!(field(attempts[1], "attempt"), "2");
        assert_eq!(field(attempts[1], "outcome"), "Success");
        let latency: u64 = field(attempts[1], "latency_us").parse().unwrap();
        assert!(latency >= 7_000, "{latency} µs");
    }

    /// No password or token reaches a span or an event: not from the URL, the auth headers or
    /// the error an attempt ended in.
    #[tokio::test(start_paused = true)]
    async fn stats_give_each_members_latency_percentiles() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::ok("a").delay(Duration::from_millis(10)));
        b.fallback(MockReply::ok("b").delay(Duration::from_millis(30)));
        let c = fleet(&[&a, &b], Strategy::RoundRobin).build().unwrap();
        assert_eq!(c.stats()[0].latency, None, "nothing ended yet");
        for _ in 0..20 {
            get(&c).await.unwrap();
        }
        let stats = c.stats();
        for (s, ms) in stats.iter().zip([10, 30]) {
            let l = s.latency.unwrap();
            assert_eq!(l.samples, 10, "{s:?}");
            let want = Duration::from_millis(ms);
            for q in [l.p50, l.p90, l.p99, l.max] {
                assert!(q >= want && q < want + Duration::from_millis(1), "{s:?}");
            }
        }
    }

    /// A single client's request is one `httpfleet.request` span (method, URL without its
    /// query, backend) closed by an event with the status and latency, on both surfaces; an
    /// error closes it too; no secret of the URL, its query or a header shows.
    #[tokio::test(start_paused = true)]
    async fn a_single_clients_request_is_a_span_with_its_status_and_latency() {
        let mock = MockBackend::new();
        mock.push(MockReply::ok("x").delay(Duration::from_millis(7)))
            .push(MockReply::error(ErrorKind::Connect));
        let c = Client::new(Backend::from(mock.clone()));
        let spans = Spans::default();
        let _traced = tracing::subscriber::set_default(spans.clone());
        let url = "http://carol:hunter2@exchange.test/api?signature=hunter2";
        c.get(url).bearer_auth("hunter2").send().await.unwrap();
        c.get(url).send().await.unwrap_err();
        let blocking = httpfleet::blocking::Client::new(Backend::from(mock.clone()));
        mock.push(MockReply::status(503));
        blocking.get(url).send().unwrap();
        let spans = spans.0.lock().unwrap();
        let requests: Vec<_> = spans
            .iter()
            .filter(|s| field(s, "name") == "httpfleet.request")
            .collect();
        assert_eq!(requests.len(), 3, "{spans:?}");
        for r in &requests {
            assert_eq!(field(r, "method"), "GET");
            assert_eq!(field(r, "url"), "http://exchange.test/api");
            assert_eq!(field(r, "backend"), "mock");
        }
        let events: Vec<_> = spans
            .iter()
            .filter(|s| field(s, "name") == "event")
            .collect();
        assert_eq!(field(events[0], "status"), "200");
        let latency: u64 = field(events[0], "latency_us").parse().unwrap();
        assert!(latency >= 7_000, "{latency} µs");
        assert!(
            field(events[1], "error").contains("connect"),
            "{:?}",
            events[1]
        );
        assert_eq!(field(events[2], "status"), "503");
        for (name, value) in spans.iter().flatten() {
            assert!(!value.contains("hunter2"), "{name} = {value}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_secret_reaches_a_trace() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::error(ErrorKind::Connect));
        b.fallback(MockReply::status(503));
        let c = FleetBuilder::new(&config().basic_auth("alice", "hunter2"))
            .members([member(&a, "m0"), member(&b, "m1")])
            .retry(RetryPolicy::default().budget(BudgetConfig::unlimited()))
            .build()
            .unwrap();
        let spans = Spans::default();
        let _traced = tracing::subscriber::set_default(spans.clone());
        let err = c
            .get("http://carol:hunter2@exchange.test/api")
            .bearer_auth("hunter2")
            .header("proxy-authorization", "Basic aHVudGVyMg==")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.attempts(), 5, "{err}");
        let spans = spans.0.lock().unwrap();
        assert!(spans.len() >= 2, "{spans:?}");
        for (name, value) in spans.iter().flatten() {
            for secret in ["hunter2", "aHVudGVyMg", "Y2Fyb2w6aHVudGVyMg"] {
                assert!(!value.contains(secret), "{secret} in {name}: {value}");
            }
        }
    }
}

/// Real backends on loopback.
mod loopback {
    use super::*;
    use support::TestServer;

    /// A fleet keeps one jar: a cookie one member's server set goes to the next member's
    /// (another server on the same host), on every backend.
    #[cfg(feature = "cookies")]
    #[tokio::test]
    async fn a_fleet_shares_its_cookies_between_members() {
        let (a, b) = (TestServer::start(), TestServer::start());
        for kind in BackendKind::enabled().filter(|k| *k != BackendKind::Mock) {
            let config = Config::default().cookies(true);
            let c = FleetBuilder::new(&config)
                .members([
                    Member::new(kind).base_url(a.url("")),
                    Member::new(kind).base_url(b.url("")),
                ])
                .strategy(Strategy::RoundRobin)
                .build()
                .unwrap();
            let port = |s: &TestServer| s.addr().port().to_string();
            let first = c.get("/cookies/set?from=a").send().await.unwrap();
            assert!(first.member().unwrap().ends_with(&port(&a)), "{kind}");
            let second = c.get("/cookies").send().await.unwrap();
            assert!(second.member().unwrap().ends_with(&port(&b)), "{kind}");
            let v: serde_json::Value = second.json().await.unwrap();
            assert_eq!(v["cookies"]["from"], "a", "{kind}");
            let jar = c.cookie_jar().unwrap();
            assert_eq!(jar.cookies_for(&a.url("/")).len(), 1);
        }
    }

    #[test]
    fn failover_answers_every_request_while_a_member_dies() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut first = Some(TestServer::start());
        let second = TestServer::start();
        let members: Vec<Member> = BackendKind::enabled()
            .filter(|k| *k != BackendKind::Mock)
            .flat_map(|k| {
                [
                    Member::new(k).base_url(first.as_ref().unwrap().url("")),
                    Member::new(k).base_url(second.url("")),
                ]
            })
            .collect();
        let config = Config::default().timeout(Duration::from_secs(5));
        let c = FleetBuilder::new(&config)
            .members(members)
            .strategy(Strategy::Failover)
            .breaker(
                BreakerConfig::default()
                    .consecutive_failures(2)
                    .cooldown(Duration::from_secs(60)),
            )
            .build()
            .unwrap();
        let mut ok = 0;
        for i in 0..200 {
            if i == 50 {
                drop(first.take()); // the first host goes away mid-run
            }
            let text = rt.block_on(async { c.get("/small").send().await?.text().await });
            assert_eq!(text.unwrap(), "Hello, World!");
            ok += 1;
        }
        assert_eq!(ok, 200);
        assert_eq!(second.requests_seen(), 150);
        let stats = c.stats();
        assert_eq!(stats[0].breaker, BreakerState::Open, "{stats:?}");
    }

    #[test]
    fn hedged_fleet_over_real_backends_answers_and_hedges_the_slow_ones() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = TestServer::start();
        let url = server.url("");
        let c = FleetBuilder::new(&Config::default().timeout(Duration::from_secs(5)))
            .member(Member::new(BackendKind::Hyper).base_url(&url))
            .member(Member::new(BackendKind::Reqwest).base_url(&url))
            .strategy(Strategy::hedged(Duration::from_millis(20)))
            .build()
            .unwrap();
        for i in 0..40 {
            // One in ten answers late: those are hedged, and the hedge (fast) wins.
            let path = if i % 10 == 0 {
                "/delay/200"
            } else {
                "/delay/1"
            };
            let resp = rt.block_on(c.get(path).send()).unwrap();
            assert_eq!(resp.status(), 200);
        }
        let hedges: u64 = c.stats().iter().map(|s| s.hedges).sum();
        assert!(hedges >= 4, "{:?}", c.stats());
    }

    /// A primary on `kind` that answers `path` slowly on the server's root, and a fast second
    /// member on `/anything` (an echo): the hedge, sent after 30 ms, wins.
    fn hedge_wins_against_a_slow_primary(kind: BackendKind, config: &Config, path: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let server = TestServer::start();
        let c = FleetBuilder::new(config)
            .member(Member::new(kind).base_url(server.url("")).name("slow"))
            .member(
                Member::new(BackendKind::Hyper)
                    .base_url(server.url("/anything"))
                    .name("fast"),
            )
            .strategy(Strategy::hedged(Duration::from_millis(30)))
            .build()
            .unwrap();
        let start = std::time::Instant::now();
        let resp = rt.block_on(c.get(path).send()).unwrap();
        let took = start.elapsed();
        assert_eq!(resp.member(), Some("fast"), "{kind}: {:?}", c.stats());
        assert_eq!(resp.status(), 200);
        // Not before its delay, and well before the primary's answer (600 ms).
        assert!(took >= Duration::from_millis(30), "{kind}: {took:?}");
        assert!(took < Duration::from_millis(500), "{kind}: {took:?}");
        let stats = c.stats();
        assert_eq!(
            (stats[0].requests, stats[0].canceled),
            (1, 1),
            "{kind}: {stats:?}"
        );
        assert_eq!(
            (stats[1].requests, stats[1].hedges),
            (1, 1),
            "{kind}: {stats:?}"
        );
    }

    #[test]
    fn a_hedge_starts_after_its_delay_while_the_primary_waits_for_headers() {
        let config = Config::default().timeout(Duration::from_secs(5));
        for kind in BackendKind::enabled().filter(|k| *k != BackendKind::Mock) {
            hedge_wins_against_a_slow_primary(kind, &config, "/delay/600");
        }
    }

    /// A hedged request is won by the first acceptable head: a primary whose head comes before
    /// the hedge delay wins, however slowly its body follows, and no hedge is sent.
    #[test]
    fn a_hedged_request_is_won_by_the_first_head_however_slow_its_body() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let server = TestServer::start();
        for kind in BackendKind::enabled().filter(|k| *k != BackendKind::Mock) {
            let c = FleetBuilder::new(&Config::default().timeout(Duration::from_secs(5)))
                .member(Member::new(kind).base_url(server.url("")).name("slow"))
                .member(
                    Member::new(BackendKind::Hyper)
                        .base_url(server.url("/anything"))
                        .name("fast"),
                )
                .strategy(Strategy::hedged(Duration::from_millis(100)))
                .build()
                .unwrap();
            let start = std::time::Instant::now();
            let body = rt.block_on(async {
                let resp = c.get("/drip?bytes=6&duration_ms=400").send().await.unwrap();
                assert_eq!(resp.member(), Some("slow"), "{kind}");
                resp.bytes().await.unwrap()
            });
            assert_eq!(body.len(), 6, "{kind}");
            assert!(start.elapsed() >= Duration::from_millis(300), "{kind}");
            let stats = c.stats();
            assert_eq!(
                (stats[0].requests, stats[1].requests),
                (1, 0),
                "{kind}: {stats:?}"
            );
        }
    }

    #[test]
    fn blocking_fleet_fails_over_too() {
        let server = TestServer::start();
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let config = Config::default();
        let blocking = FleetBuilder::new(&config)
            .member(Member::new(BackendKind::Ureq).base_url(&dead))
            .member(Member::new(BackendKind::Hyper).base_url(server.url("")))
            .build_blocking()
            .unwrap();
        let resp = blocking.get("/small").send().unwrap();
        assert_eq!(resp.attempts(), 2);
        assert_eq!(resp.text().unwrap(), "Hello, World!");
    }
}

/// The per-attempt hook on a fleet, and bodies that can be sent only once.
mod hooks_and_bodies {
    use super::*;
    use httpfleet::Body;
    use httpfleet::hook::{Admission, After, Before, Hook};
    use std::sync::{Arc, Mutex};

    type Seen = Arc<Mutex<Vec<String>>>;

    /// Records each attempt before and after; stamps it with its number; waits `wait` before
    /// each; refuses any to member `refuse`.
    #[derive(Clone, Default)]
    struct Gate {
        seen: Seen,
        wait: Duration,
        refuse: Option<&'static str>,
    }

    impl Hook for Gate {
        fn before<'a>(&'a self, attempt: &'a mut Before<'_>) -> Admission<'a> {
            Box::pin(async move {
                let member = attempt.member().unwrap_or("-").to_owned();
                self.seen
                    .lock()
                    .unwrap()
                    .push(format!("before {member} {}", attempt.number()));
                if self.refuse == Some(member.as_str()) {
                    return Err(httpfleet::Error::refused("over the weight limit"));
                }
                tokio::time::sleep(self.wait).await;
                let n = attempt.number().to_string();
                attempt
                    .request_mut()
                    .headers_mut()
                    .insert("x-attempt", n.parse().unwrap());
                Ok(())
            })
        }

        fn after(&self, attempt: &After<'_>) {
            let outcome = match attempt.outcome() {
                Ok(resp) => resp.status().as_u16().to_string(),
                Err(e) => e.kind().to_string(),
            };
            self.seen.lock().unwrap().push(format!(
                "after {} {outcome}",
                attempt.member().unwrap_or("-")
            ));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_hook_admits_every_attempt_failover_included_and_sees_each_outcome() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(MockReply::status(503));
        let gate = Gate {
            wait: Duration::from_millis(50),
            ..Gate::default()
        };
        let c = fleet(&[&a, &b], Strategy::Failover)
            .hook(gate.clone())
            .build()
            .unwrap();
        let start = Instant::now();
        let resp = get(&c).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(
            *gate.seen.lock().unwrap(),
            ["before m0 1", "after m0 503", "before m1 2", "after m1 200"]
        );
        assert_eq!(a.requests()[0].headers()["x-attempt"], "1");
        assert_eq!(b.requests()[0].headers()["x-attempt"], "2");
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_by_the_hook_ends_the_request_and_nothing_is_sent() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(MockReply::status(503));
        let gate = Gate {
            refuse: Some("m1"),
            ..Gate::default()
        };
        let c = fleet(&[&a, &b], Strategy::Failover)
            .hook(gate.clone())
            .build()
            .unwrap();
        let err = get(&c).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Refused);
        assert!(err.to_string().contains("over the weight limit"), "{err}");
        assert_eq!((a.request_count(), b.request_count()), (1, 0));
    }

    #[test]
    fn a_blocking_fleet_calls_the_hook_too() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(MockReply::error(ErrorKind::Connect));
        let gate = Gate::default();
        let c = fleet(&[&a, &b], Strategy::Failover)
            .hook(gate.clone())
            .build_blocking()
            .unwrap();
        let resp = c.get("http://exchange.test/api").send().unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            *gate.seen.lock().unwrap(),
            [
                "before m0 1",
                "after m0 connection failed",
                "before m1 2",
                "after m1 200"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_sent_once_is_not_sent_to_another_member() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.push(MockReply::error(ErrorKind::Connect));
        let c = fleet(&[&a, &b], Strategy::Failover).build().unwrap();
        let body = Body::reader(std::io::Cursor::new(b"order".to_vec()), Some(5));
        let err = c
            .post("http://exchange.test/api")
            .body(body)
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Connect);
        assert_eq!((a.request_count(), b.request_count()), (1, 0));
        assert!(
            err.history()
                .iter()
                .any(|h| h.outcome.contains("sent once")),
            "{:?}",
            err.history()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_sent_once_is_not_hedged() {
        let (a, b) = (MockBackend::new(), MockBackend::new());
        a.fallback(MockReply::ok("primary").delay(Duration::from_millis(100)));
        let c = fleet(&[&a, &b], Strategy::hedged(Duration::from_millis(10)))
            .build()
            .unwrap();
        let body = Body::reader(std::io::Cursor::new(b"order".to_vec()), None);
        let resp = c
            .put("http://exchange.test/api")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "primary");
        assert_eq!(b.request_count(), 0);
        assert_eq!(a.requests()[0].body().as_bytes(), Some(&b"order"[..]));
    }
}
