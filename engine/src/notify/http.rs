//! What the HTTP receivers share: one client (rustls), status classification (2xx delivered,
//! 429 honours `Retry-After`, 5xx and timeouts retryable, other 4xx permanent), error texts
//! that never carry a URL or a secret, and the reading of their common options (`rate_limit`
//! and `burst` with each kind's default, `timeout`, URLs from the config or the environment).

use super::redact::Secret;
use super::NotifyError;
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn client(timeout: Option<Duration>) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(timeout.unwrap_or(DEFAULT_TIMEOUT))
        .user_agent(concat!("tripline/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("http client: {}", e.without_url()))
}

/// Parses a receiver's `timeout = "5s"`.
pub fn timeout(s: Option<&str>) -> Result<Option<Duration>, String> {
    s.map(|s| crate::clock::parse_duration(s).map(|d| d.to_std().unwrap_or(DEFAULT_TIMEOUT)))
        .transpose()
}

/// `#[serde(default = "http::yes")]`: options such as `send_resolved` that default to true.
pub fn yes() -> bool {
    true
}

/// Parses `N/s`, `N/m`, `N/h` into events per second.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let (n, unit) = s
        .trim()
        .split_once('/')
        .ok_or_else(|| format!("invalid rate {s:?} (e.g. \"1/s\", \"120/m\")"))?;
    let n: f64 = n
        .trim()
        .parse()
        .map_err(|_| format!("invalid rate {s:?} (e.g. \"1/s\", \"120/m\")"))?;
    let per = match unit.trim() {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "invalid rate unit {other:?} in {s:?} (use s, m or h)"
            ))
        }
    };
    if n <= 0.0 || !n.is_finite() {
        return Err(format!("rate {s:?} must be positive"));
    }
    Ok(n / per)
}

/// A receiver's pace from its `rate_limit` and `burst` options: (requests per second, burst).
/// Unset, the kind's `default` applies (its burst overridable alone); a `rate_limit` given
/// without `burst` allows bursts of 1. `None`: unpaced.
pub fn pace(
    rate_limit: Option<&str>,
    burst: Option<u32>,
    default: Option<(f64, u32)>,
) -> Result<Option<(f64, u32)>, String> {
    Ok(match (rate_limit, default) {
        (Some(r), _) => Some((parse_rate(r)?, burst.unwrap_or(1))),
        (None, Some((rate, b))) => Some((rate, burst.unwrap_or(b))),
        (None, None) => None,
    })
}

/// An http(s) URL, or an error naming where it came from (never the value: it may be secret).
pub fn checked_url(url: Secret, from: &str) -> Result<Secret, String> {
    match reqwest::Url::parse(url.expose()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(url),
        _ => Err(format!("{from} does not hold an http(s) URL")),
    }
}

/// The http(s) URL held by environment variable `var` (a secret, e.g. a webhook URL).
pub fn url_from_env(var: &str) -> Result<Secret, String> {
    checked_url(
        Secret::from_env(var)?,
        &format!("environment variable {var}"),
    )
}

/// The http(s) URL written as the receiver's `url` option.
pub fn url_option(url: &str) -> Result<Secret, String> {
    checked_url(Secret::new(url), "`url`")
}

/// What a receiver posting one JSON body per notification to one URL holds (Slack, Teams, the
/// webhook): its name, the URL (a secret, scrubbed from every error), a client and the
/// per-request timeout.
pub struct Endpoint {
    name: String,
    url: Secret,
    client: reqwest::Client,
    timeout: Duration,
}

impl Endpoint {
    pub fn new(
        name: impl Into<String>,
        url: Secret,
        timeout: Option<Duration>,
    ) -> Result<Self, String> {
        Ok(Endpoint {
            name: name.into(),
            url,
            client: client(timeout)?,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// POSTs `body` for `n`, whose id goes in `X-Tripline-Notification-Id` for deduplication.
    pub async fn post(
        &self,
        n: &super::Notification,
        body: &(impl serde::Serialize + Sync),
    ) -> Result<(), NotifyError> {
        post_json(
            &self.client,
            &self.name,
            self.url.expose(),
            body,
            &[("x-tripline-notification-id", &n.id)],
            &[&self.url],
        )
        .await
    }
}

/// POSTs `body` as JSON to `url` and classifies the answer. `secrets` are scrubbed from any text
/// that could reach an error message.
pub async fn post_json(
    client: &reqwest::Client,
    receiver: &str,
    url: &str,
    body: &(impl serde::Serialize + Sync),
    headers: &[(&str, &str)],
    secrets: &[&Secret],
) -> Result<(), NotifyError> {
    let mut req = client.post(url).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let scrub = |s: String| secrets.iter().fold(s, |acc, sec| sec.scrub(&acc));
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                scrub(error_chain(&e.without_url()))
            };
            return Err(NotifyError::retryable(format!("{receiver}: {what}")));
        }
    };
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let text = resp.text().await.unwrap_or_default();
    let excerpt: String = scrub(text).chars().take(200).collect();
    let message = format!(
        "{receiver}: HTTP {}{}",
        status.as_u16(),
        if excerpt.trim().is_empty() {
            String::new()
        } else {
            format!(": {}", excerpt.trim())
        }
    );
    Err(match status.as_u16() {
        // Without `Retry-After` (PagerDuty sends none) the outbox backs off exponentially.
        429 => NotifyError::rate_limited(message, retry_after),
        408 | 500..=599 => NotifyError {
            retry_after,
            ..NotifyError::retryable(message)
        },
        _ => NotifyError::permanent(message),
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// `Retry-After` as seconds (the form Slack and PagerDuty send) or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("20"), Some(Duration::from_secs(20)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
