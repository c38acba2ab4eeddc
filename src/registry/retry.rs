//! Retries of registry requests after transient failures.

use std::future::Future;
use std::time::Duration;

use oci_client::errors::OciDistributionError;

use super::RegistryError;
use super::error::RequestContext;

/// Tries per request when a connection fails, a try times out, or the
/// registry returns 429 or 5xx.
const MAX_TRIES: u32 = 3;

/// Delay before the second try. It doubles before each further try, and
/// each wait varies by up to a quarter so that parallel clients spread out.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);

/// Runs `request` with a time limit per try, and tries again after a
/// growing wait when the failure is transient (see
/// [`RegistryError::is_transient`]).
pub(crate) async fn with_retries<T, F, Fut>(
    context: &RequestContext<'_>,
    operation: &str,
    time_limit: Duration,
    request: F,
) -> Result<T, RegistryError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut delay = FIRST_RETRY_DELAY;

    for attempt in 1..=MAX_TRIES {
        let error = match tokio::time::timeout(time_limit, request()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(error)) => context.map_error(error),
            Err(_elapsed) => {
                RegistryError::TimedOut { registry: context.registry.to_string(), seconds: time_limit.as_secs() }
            }
        };

        if !error.is_transient() || attempt == MAX_TRIES {
            return Err(error);
        }

        let wait = with_jitter(delay);
        tracing::warn!(
            registry = context.registry,
            repository = context.repository,
            attempt,
            error = %error.to_string().lines().next().unwrap_or_default(),
            "{operation} failed, retrying in {} ms",
            wait.as_millis()
        );
        tokio::time::sleep(wait).await;
        delay *= 2;
    }

    unreachable!("the last try returns its result")
}

/// Returns `delay` changed by up to ±25 %, using the clock's nanoseconds as
/// the random source: spreading clients apart needs no better randomness.
fn with_jitter(delay: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let factor = 0.75 + f64::from(nanos % 1000) / 2000.0;
    delay.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_quarter() {
        for _ in 0..100 {
            let wait = with_jitter(Duration::from_millis(1000));
            assert!(wait >= Duration::from_millis(750), "{wait:?}");
            assert!(wait < Duration::from_millis(1250), "{wait:?}");
        }
    }
}
