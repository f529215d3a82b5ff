//! Reading an OAuth2 token endpoint's answer (RFC 6749, section 5.1): the body up to a cap,
//! then the token fields out of its JSON.

use serde_json::Value;

use super::{UpstreamError, UpstreamToken};
use crate::http::CappedReadError;

/// The most of an upstream answer the function reads: a token answer is well under 8 KiB, and
/// what the function hands out must stay far below Lambda's 6 MB response limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The longest `access_token` or `refresh_token` passed on (a JWT of a few KiB fits many times).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
const BODY_TOO_LARGE: &str = "the body is larger than 64 KiB";
const TOKEN_TOO_LONG: &str = "a token is longer than 16 KiB";

/// The upstream's body up to [`MAX_BODY_BYTES`] (see [`crate::http::read_capped`]).
pub(super) async fn read_capped(response: reqwest::Response) -> Result<Vec<u8>, UpstreamError> {
    crate::http::read_capped(response, MAX_BODY_BYTES).await.map_err(|error| match error {
        CappedReadError::TooLarge => UpstreamError::InvalidResponse(BODY_TOO_LARGE),
        CappedReadError::Transport(error) => transport_error(error),
    })
}

pub(super) fn transport_error(error: reqwest::Error) -> UpstreamError {
    if error.is_timeout() { UpstreamError::Timeout } else { UpstreamError::Unreachable }
}

/// Picks the token fields out of an OAuth2 token answer.
///
/// `access_token` must be a non-empty string, `refresh_token` a string if given (another type
/// is ignored), each at most [`MAX_TOKEN_BYTES`]. `expires_in`, see [`lifetime_seconds`].
pub fn parse_token(body: &[u8]) -> Result<UpstreamToken, UpstreamError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(UpstreamError::InvalidResponse(BODY_TOO_LARGE));
    }
    let json: Value =
        serde_json::from_slice(body).map_err(|_| UpstreamError::InvalidResponse("the body is not JSON"))?;
    let access_token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .ok_or(UpstreamError::InvalidResponse("no access_token"))?;
    let refresh_token = json.get("refresh_token").and_then(Value::as_str);
    if access_token.len() > MAX_TOKEN_BYTES
        || refresh_token.is_some_and(|token| token.len() > MAX_TOKEN_BYTES)
    {
        return Err(UpstreamError::InvalidResponse(TOKEN_TOO_LONG));
    }
    let expires_in = json.get("expires_in").map(lifetime_seconds).transpose()?.flatten();
    Ok(UpstreamToken {
        access_token: access_token.to_string(),
        refresh_token: refresh_token.map(str::to_string),
        expires_in,
    })
}

/// The token's lifetime in whole seconds from `expires_in`; `None` when it is `null`.
///
/// Accepted: a non-negative number, integer or not (a fraction is dropped; anything beyond
/// `u64::MAX` seconds counts as `u64::MAX`), or a string holding one (some APIs send that).
/// Refused as not a token answer: a negative number, a string that is no number (or `NaN`,
/// infinity), a boolean, an array, an object.
pub fn lifetime_seconds(value: &Value) -> Result<Option<u64>, UpstreamError> {
    const INVALID: UpstreamError = UpstreamError::InvalidResponse("expires_in is not a number of seconds");
    let whole_seconds = |seconds: f64| {
        // `as` saturates: 1e30 becomes u64::MAX.
        (seconds.is_finite() && seconds >= 0.0).then(|| seconds.floor() as u64)
    };
    match value {
        Value::Null => Ok(None),
        Value::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(seconds), _) => Ok(Some(seconds)),
            (None, Some(_negative)) => Err(INVALID),
            (None, None) => number.as_f64().and_then(whole_seconds).map(Some).ok_or(INVALID),
        },
        Value::String(text) => {
            let text = text.trim();
            text.parse::<u64>()
                .ok()
                .or_else(|| text.parse::<f64>().ok().and_then(whole_seconds))
                .map(Some)
                .ok_or(INVALID)
        }
        Value::Bool(_) | Value::Array(_) | Value::Object(_) => Err(INVALID),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_token_fields() {
        let token = parse_token(
            br#"{"token_type":"Bearer","access_token":"at","refresh_token":"rt","expires_in":3600,"scope":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            token,
            UpstreamToken {
                access_token: "at".into(),
                refresh_token: Some("rt".into()),
                expires_in: Some(3600)
            }
        );
    }

    #[test]
    fn accepts_lifetime_as_string_and_absent() {
        assert_eq!(parse_token(br#"{"access_token":"at","expires_in":"60"}"#).unwrap().expires_in, Some(60));
        assert_eq!(parse_token(br#"{"access_token":"at"}"#).unwrap().expires_in, None);
    }

    #[test]
    fn any_expires_in_is_a_lifetime_or_refused_never_a_panic() {
        let lifetime = |raw: &str| {
            parse_token(format!(r#"{{"access_token":"at","expires_in":{raw}}}"#).as_bytes())
                .map(|token| token.expires_in)
        };
        for (raw, seconds) in [
            ("0", Some(0)),
            ("3600", Some(3600)),
            ("18446744073709551615", Some(u64::MAX)),
            ("18446744073709551616", Some(u64::MAX)),
            ("184467440737095516150000000", Some(u64::MAX)),
            ("1e30", Some(u64::MAX)),
            ("1.7976931348623157e308", Some(u64::MAX)),
            ("3600.9", Some(3600)),
            ("0.5", Some(0)),
            ("-0", Some(0)),
            ("-0.0", Some(0)),
            ("null", None),
            (r#""3600""#, Some(3600)),
            (r#"" 60 ""#, Some(60)),
            (r#""1e30""#, Some(u64::MAX)),
            (r#""99999999999999999999999""#, Some(u64::MAX)),
            (r#""12.5""#, Some(12)),
        ] {
            assert_eq!(lifetime(raw), Ok(seconds), "{raw}");
        }
        for raw in [
            "-1",
            "-9223372036854775808",
            "-1e30",
            "-0.5",
            "true",
            "false",
            "[]",
            "[3600]",
            "{}",
            r#"{"seconds":3600}"#,
            r#""""#,
            r#""soon""#,
            r#""-5""#,
            r#""NaN""#,
            r#""inf""#,
            r#""-inf""#,
            r#""1e400""#,
            r#""0x10""#,
        ] {
            assert!(matches!(lifetime(raw), Err(UpstreamError::InvalidResponse(_))), "{raw}");
        }
        // Beyond f64: serde_json refuses the number, so the body is not JSON.
        assert!(matches!(lifetime("1e400"), Err(UpstreamError::InvalidResponse(_))));
    }

    #[test]
    fn caps_the_body_and_the_tokens() {
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        for body in [
            format!(r#"{{"access_token":"{long}"}}"#),
            format!(r#"{{"access_token":"at","refresh_token":"{long}"}}"#),
        ] {
            assert_eq!(parse_token(body.as_bytes()), Err(UpstreamError::InvalidResponse(TOKEN_TOO_LONG)));
        }
        let exact = "a".repeat(MAX_TOKEN_BYTES);
        assert!(parse_token(format!(r#"{{"access_token":"{exact}"}}"#).as_bytes()).is_ok());
        let padded = format!(r#"{{"access_token":"at","pad":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert_eq!(parse_token(padded.as_bytes()), Err(UpstreamError::InvalidResponse(BODY_TOO_LARGE)));
        assert!(BODY_TOO_LARGE.contains(&format!("{} KiB", MAX_BODY_BYTES / 1024)));
        assert!(TOKEN_TOO_LONG.contains(&format!("{} KiB", MAX_TOKEN_BYTES / 1024)));
    }

    #[test]
    fn rejects_what_is_not_a_token() {
        for body in [
            &b"<html>"[..],
            b"",
            b"{}",
            b"[]",
            b"null",
            br#"{"access_token":""}"#,
            br#"{"access_token":5}"#,
            br#"{"access_token":"a","expires_in":-5}"#,
            &[0xff, 0xfe, 0x00][..],
        ] {
            assert!(matches!(parse_token(body), Err(UpstreamError::InvalidResponse(_))), "{body:?}");
        }
    }
}
