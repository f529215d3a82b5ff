//! The function's log events in CloudWatch Logs, read back as one entry a request: when it
//! came, its request id, the status the function answered, how long the invocation took (from
//! Lambda's REPORT line) and the function's error code; and the lines that belong to no request
//! served (a timeout, a crash, a failed start) as what they say. The function never logs a
//! secret, and only the fields named here are shown of its lines.

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::aws::{Aws, AwsResultExt, MAX_PAGES, RESOURCE_NOT_FOUND};
use crate::stack::Stack;

/// At most this many events a read: a busy function's hour must not keep `logs` for minutes.
pub const MAX_EVENTS: usize = 10_000;
/// A line the function wrote that tokendeploy cannot read as a request is shown up to here.
const SHOWN_CHARS: usize = 300;

/// One log event as CloudWatch Logs keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub message: String,
}

/// One request, or one line that belongs to none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// When it began, RFC 3339 in UTC to the millisecond.
    pub time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The status the function answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The invocation's duration, as Lambda reported it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// The function's error code (`upstream_error`, ...), or `timeout` / `crash`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What happened, in the function's or Lambda's words, when it is not a request served.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(skip)]
    pub timestamp: i64,
    /// Lambda reported the invocation's end (REPORT): nothing more will come for it.
    #[serde(skip)]
    pub complete: bool,
}

impl Entry {
    fn new(timestamp: i64, request_id: Option<String>) -> Self {
        Self {
            time: rfc3339(timestamp),
            request_id,
            status: None,
            latency_ms: None,
            error: None,
            message: None,
            timestamp,
            complete: false,
        }
    }

    /// One readable line: time, request id, status, latency, error code, words.
    pub fn line(&self) -> String {
        let mut parts = vec![self.time.clone(), self.request_id.clone().unwrap_or_else(|| "-".into())];
        parts.push(self.status.map_or_else(|| "-".into(), |status| status.to_string()));
        parts.push(self.latency_ms.map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms")));
        parts.extend(self.error.clone());
        parts.extend(self.message.clone());
        parts.join("  ")
    }
}

/// The function's log events from `since` (milliseconds since the epoch), oldest first, at most
/// [`MAX_EVENTS`]; none when it has no log group yet.
pub async fn read(aws: &Aws, stack: &Stack, since: i64) -> Result<Vec<Event>> {
    let group = stack.log_group_name();
    let mut events = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = aws
            .logs
            .filter_log_events()
            .log_group_name(&group)
            .start_time(since)
            .set_next_token(token.clone())
            .send()
            .await;
        let Some(page) = page.or_absent(RESOURCE_NOT_FOUND, format!("reading log group {group}"))? else {
            return Ok(events);
        };
        events.extend(page.events().iter().map(|event| Event {
            id: event.event_id().unwrap_or_default().to_string(),
            timestamp: event.timestamp().unwrap_or_default(),
            message: event.message().unwrap_or_default().to_string(),
        }));
        token = match page.next_token() {
            Some(next) if Some(next) != token.as_deref() && events.len() < MAX_EVENTS => {
                Some(next.to_string())
            }
            _ => break,
        };
    }
    events.sort_by_key(|event| event.timestamp);
    events.truncate(MAX_EVENTS);
    Ok(events)
}

/// The entries `events` make, in the order they began; events already `seen` (by id) are
/// skipped, and those read now are added to it.
pub fn entries(events: &[Event], seen: &mut HashSet<String>) -> Vec<Entry> {
    let mut grouped = Grouped::default();
    for event in events.iter().filter(|event| seen.insert(event.id.clone())) {
        let line = event.message.trim_end();
        let at = event.timestamp;
        if let Some(rest) = line.strip_prefix("START RequestId: ") {
            grouped.of_request(word(rest), at);
        } else if line.starts_with("END RequestId: ") {
        } else if let Some(rest) = line.strip_prefix("REPORT RequestId: ") {
            let entry = grouped.of_request(word(rest), at);
            entry.latency_ms = duration_ms(rest);
            entry.complete = true;
        } else if let Ok(json) = serde_json::from_str::<Value>(line) {
            let entry = match json["span"]["requestId"].as_str() {
                Some(id) => grouped.of_request(id, at),
                None => grouped.alone(at),
            };
            let fields = &json["fields"];
            match fields["status"].as_u64() {
                Some(status) => {
                    entry.status = u16::try_from(status).ok();
                    entry.error = fields["error"].as_str().map(str::to_string);
                }
                None => entry.message = fields["message"].as_str().map(shown),
            }
        } else {
            // Lambda's own words about an invocation ("... <request id> Task timed out after
            // 10.00 seconds"), or a line of the function's that is no JSON.
            let id = line.split_whitespace().nth(1).filter(|id| grouped.knows(id));
            let entry = match id {
                Some(id) => grouped.of_request(id, at),
                None => grouped.alone(at),
            };
            if line.contains("Task timed out") {
                entry.error = Some("timeout".into());
            } else if line.contains("Runtime exited") || line.contains("Runtime.ExitError") {
                entry.error = Some("crash".into());
            }
            entry.message = Some(shown(line));
        }
    }
    grouped.entries
}

/// Entries in the order they began, a request's found by its id.
#[derive(Default)]
struct Grouped {
    entries: Vec<Entry>,
    requests: BTreeMap<String, usize>,
}

impl Grouped {
    fn knows(&self, request_id: &str) -> bool {
        self.requests.contains_key(request_id)
    }

    fn of_request(&mut self, request_id: &str, at: i64) -> &mut Entry {
        let index = match self.requests.get(request_id) {
            Some(index) => *index,
            None => {
                self.entries.push(Entry::new(at, Some(request_id.to_string())));
                self.requests.insert(request_id.to_string(), self.entries.len() - 1);
                self.entries.len() - 1
            }
        };
        &mut self.entries[index]
    }

    fn alone(&mut self, at: i64) -> &mut Entry {
        self.entries.push(Entry::new(at, None));
        self.entries.last_mut().expect("just pushed")
    }
}

/// Follows a log as it grows: events fed in any number of reads (overlapping ones included)
/// come out as entries once, each when its invocation has ended (or [`STALE_AFTER`] after it
/// began, should its end never come).
#[derive(Default)]
pub struct Tail {
    seen: HashSet<String>,
    pending: Vec<Entry>,
}

/// How long an invocation's entry waits for Lambda's REPORT line before it is shown anyway.
pub const STALE_AFTER: i64 = 30_000;

impl Tail {
    /// The entries ready to show after `events`, `now` in milliseconds since the epoch.
    pub fn feed(&mut self, events: &[Event], now: i64) -> Vec<Entry> {
        for entry in entries(events, &mut self.seen) {
            let same =
                |pending: &&mut Entry| entry.request_id.is_some() && pending.request_id == entry.request_id;
            match self.pending.iter_mut().find(same) {
                Some(pending) => pending.merge(entry),
                None => self.pending.push(entry),
            }
        }
        let ready = |entry: &Entry| {
            entry.complete || entry.request_id.is_none() || now - entry.timestamp >= STALE_AFTER
        };
        let (shown, waiting) = std::mem::take(&mut self.pending).into_iter().partition(ready);
        self.pending = waiting;
        shown
    }

    /// Every entry not shown yet.
    pub fn flush(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.pending)
    }
}

impl Entry {
    /// What a later read adds to the same invocation.
    fn merge(&mut self, later: Entry) {
        self.status = self.status.or(later.status);
        self.latency_ms = self.latency_ms.or(later.latency_ms);
        self.error = self.error.take().or(later.error);
        self.message = self.message.take().or(later.message);
        self.complete |= later.complete;
    }
}

fn word(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or_default()
}

/// `Duration: 2.70 ms` of a REPORT line.
fn duration_ms(report: &str) -> Option<f64> {
    let after = report.split("Duration: ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

fn shown(text: &str) -> String {
    let mut shown: String = text.chars().take(SHOWN_CHARS).collect();
    if text.chars().nth(SHOWN_CHARS).is_some() {
        shown.push('…');
    }
    shown
}

/// Milliseconds since the epoch as `2026-12-06T02:09:39.123Z`.
pub fn rfc3339(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        millis.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u32, timestamp: i64, message: &str) -> Event {
        Event { id: id.to_string(), timestamp, message: message.into() }
    }

    #[test]
    fn a_request_is_one_entry_with_its_status_latency_and_error() {
        let served = r#"{"level":"WARN","fields":{"message":"request failed","method":"GET","path":"/token","status":502,"error":"upstream_error"},"span":{"requestId":"r-1"}}"#;
        let events = [
            event(1, 1_796_522_979_123, "START RequestId: r-1 Version: $LATEST"),
            event(2, 1_796_522_979_130, served),
            event(3, 1_796_522_979_131, "END RequestId: r-1"),
            event(4, 1_796_522_979_132, "REPORT RequestId: r-1\tDuration: 8.25 ms\tBilled Duration: 9 ms"),
        ];
        let mut seen = HashSet::new();
        let entries = entries(&events, &mut seen);
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(
            (entry.status, entry.latency_ms, entry.error.as_deref(), entry.complete),
            (Some(502), Some(8.25), Some("upstream_error"), true)
        );
        assert_eq!(entry.line(), "2026-12-06T02:09:39.123Z  r-1  502  8.2 ms  upstream_error");
        assert!(super::entries(&events, &mut seen).is_empty(), "events already seen are not told again");
    }

    #[test]
    fn a_followed_log_shows_each_invocation_once_when_it_has_ended() {
        let mut tail = Tail::default();
        let start = event(1, 1000, "START RequestId: r-3 Version: $LATEST");
        let served = event(2, 1001, r#"{"fields":{"status":200},"span":{"requestId":"r-3"}}"#);
        assert!(tail.feed(&[start.clone(), served.clone()], 2000).is_empty(), "not ended yet");
        let report = event(3, 1002, "REPORT RequestId: r-3\tDuration: 1.50 ms");
        let shown = tail.feed(&[start, served, report], 3000);
        assert_eq!(shown.len(), 1);
        assert_eq!((shown[0].status, shown[0].latency_ms), (Some(200), Some(1.5)));
        assert!(tail.flush().is_empty());
        let lost = event(4, 5000, "START RequestId: r-4 Version: $LATEST");
        assert!(tail.feed(&[lost], 6000).is_empty());
        assert_eq!(tail.feed(&[], 5000 + STALE_AFTER).len(), 1, "shown once its end is overdue");
    }

    #[test]
    fn what_belongs_to_no_request_served_is_told_in_its_own_words() {
        let events = [
            event(1, 0, "START RequestId: r-2 Version: $LATEST"),
            event(2, 1, "2026-12-06T02:09:39.123Z r-2 Task timed out after 10.00 seconds"),
            event(3, 2, "REPORT RequestId: r-2\tDuration: 10000.00 ms"),
            event(4, 3, "thread 'main' panicked at src/main.rs:1:1"),
        ];
        let entries = entries(&events, &mut HashSet::new());
        assert_eq!(entries[0].error.as_deref(), Some("timeout"));
        assert_eq!(entries[1].request_id, None);
        assert_eq!(entries[1].message.as_deref(), Some("thread 'main' panicked at src/main.rs:1:1"));
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
