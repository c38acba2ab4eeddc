//! The retry policy shared by pushes and pulls: tries again after connection
//! failures, timeouts, 429 and 5xx, with a doubling, jittered backoff that
//! a `Retry-After` header overrides, bounded in tries and in total time.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use super::RegistryError;
use super::error::RequestContext;

/// Limits of the retries of one request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Tries per request, the first one included.
    pub max_tries: u32,
    /// Delay before the second try. It doubles before each further try, and
    /// each wait varies by up to a quarter so that parallel clients spread out.
    pub first_delay: Duration,
    /// Maximum wait that a `Retry-After` header can impose. A longer value
    /// is cut to this.
    pub max_retry_after: Duration,
    /// Time from the first try after which no further try starts.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_tries: 3,
            first_delay: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
        }
    }
}

/// A failed try, with the wait the registry asked for in `Retry-After`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: RegistryError,
    pub retry_after: Option<Duration>,
}

impl From<RegistryError> for Failure {
    fn from(error: RegistryError) -> Failure {
        Failure { error, retry_after: None }
    }
}

/// Runs `request` with a time limit per try, and tries again while the
/// failure is transient (see [`RegistryError::is_transient`]) and `policy`
/// allows another try.
pub(crate) async fn retry<T, F, Fut>(
    policy: &RetryPolicy,
    context: &RequestContext<'_>,
    operation: &str,
    time_limit: Duration,
    request: F,
) -> Result<T, RegistryError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let started = Instant::now();
    let mut delay = policy.first_delay;

    for attempt in 1..=policy.max_tries {
        let failure = match tokio::time::timeout(time_limit, request()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(failure)) => failure,
            Err(_elapsed) => Failure::from(RegistryError::TimedOut {
                registry: context.registry.to_string(),
                seconds: time_limit.as_secs(),
            }),
        };

        let wait = match failure.retry_after {
            Some(requested) => requested.min(policy.max_retry_after),
            None => with_jitter(delay),
        };
        let out_of_time = started.elapsed() + wait > policy.max_elapsed;
        if !failure.error.is_transient() || attempt == policy.max_tries || out_of_time {
            return Err(failure.error);
        }

        // Only the first line: the rest of a message is the hint. Errors
        // never contain credentials, so the line is safe to log.
        tracing::warn!(
            registry = context.registry,
            repository = context.repository,
            attempt,
            error = %failure.error.to_string().lines().next().unwrap_or_default(),
            "{operation} failed, retrying in {} ms",
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
        delay *= 2;
    }

    unreachable!("the last try returns its result")
}

/// Parses a `Retry-After` value: whole seconds, or an HTTP date
/// (RFC 9110 section 10.2.3), which counts from `now`. A date in the past
/// gives zero. Returns `None` for anything else.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }

    let date = jiff::fmt::rfc2822::parse(value).ok()?;
    let at = SystemTime::from(date.timestamp());
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Returns `delay` changed by up to ±25 %, using the clock's nanoseconds as
/// the random source: spreading clients apart needs no better randomness.
fn with_jitter(delay: Duration) -> Duration {
    let nanos = SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const CONTEXT: RequestContext<'static> =
        RequestContext { registry: "127.0.0.1:5000", repository: "job", https: false, pull: false };

    fn server_error(status: u16) -> RegistryError {
        RegistryError::ServerError { registry: "127.0.0.1:5000".to_string(), repository: "job".to_string(), status }
    }

    fn fast_policy() -> RetryPolicy {
        RetryPolicy {
            max_tries: 3,
            first_delay: Duration::from_millis(1),
            max_retry_after: Duration::from_millis(200),
            max_elapsed: Duration::from_secs(10),
        }
    }

    #[test]
    fn jitter_stays_within_quarter() {
        for _ in 0..100 {
            let wait = with_jitter(Duration::from_millis(1000));
            assert!(wait >= Duration::from_millis(750), "{wait:?}");
            assert!(wait < Duration::from_millis(1250), "{wait:?}");
        }
    }

    #[test]
    fn retry_after_seconds_parsed() {
        assert_eq!(parse_retry_after(" 7 ", SystemTime::now()), Some(Duration::from_secs(7)));
    }

    #[test]
    fn retry_after_http_date_parsed() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_470);

        let wait = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now);

        assert_eq!(wait, Some(Duration::from_secs(10)));
    }

    #[test]
    fn retry_after_past_date_is_zero() {
        let wait = parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", SystemTime::now());

        assert_eq!(wait, Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_garbage_ignored() {
        assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
    }

    #[tokio::test]
    async fn transient_failure_retried_until_success() {
        let tries = AtomicU32::new(0);

        let result = retry(&fast_policy(), &CONTEXT, "blob check", Duration::from_secs(5), || async {
            match tries.fetch_add(1, Ordering::SeqCst) {
                0 => Err(Failure::from(server_error(503))),
                _ => Ok("done"),
            }
        })
        .await;

        assert_eq!(result.unwrap(), "done");
        assert_eq!(tries.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn retry_after_capped_by_policy() {
        let started = Instant::now();

        let result: Result<(), _> = retry(&fast_policy(), &CONTEXT, "blob check", Duration::from_secs(5), || async {
            Err(Failure { error: server_error(429), retry_after: Some(Duration::from_secs(3600)) })
        })
        .await;

        assert!(matches!(result, Err(RegistryError::ServerError { status: 429, .. })));
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn total_time_bound_stops_retries() {
        let tries = AtomicU32::new(0);
        let policy = RetryPolicy { max_tries: 10, max_elapsed: Duration::from_millis(100), ..fast_policy() };

        let _ = retry(&policy, &CONTEXT, "blob check", Duration::from_secs(5), || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Failure { error: server_error(503), retry_after: Some(Duration::from_millis(60)) })
        })
        .await;

        assert_eq!(tries.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn permanent_failure_not_retried() {
        let tries = AtomicU32::new(0);

        let _ = retry(&fast_policy(), &CONTEXT, "blob check", Duration::from_secs(5), || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(Failure::from(RegistryError::Forbidden {
                registry: "127.0.0.1:5000".to_string(),
                repository: "job".to_string(),
            }))
        })
        .await;

        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
