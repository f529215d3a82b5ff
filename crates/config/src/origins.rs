//! Which browser origins may ask for a token.
//!
//! CORS is what keeps other websites from spending the app's token quota from their visitors'
//! browsers; it is not authentication (a non-browser client sends no `Origin` and is served).

/// The parsed `ALLOWED_ORIGINS`: `*`, or exact origins such as `https://app.example.com`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    Any,
    List(Vec<String>),
}

/// What to do with a request, given its `Origin` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginCheck {
    /// No `Origin` header: not a cross-origin browser request, so no CORS headers.
    NoOrigin,
    /// Serve, echoing this value in `Access-Control-Allow-Origin`.
    Allowed {
        allow_origin: String,
        vary: bool,
    },
    Denied,
}

impl AllowedOrigins {
    /// `None` when the value holds something that is not an origin. Each origin is read with
    /// a URL parser and kept in the form browsers send (`https://a.example`, lowercase, no
    /// default port, international names in punycode); a trailing `/` is forgiven, a path,
    /// query, fragment, user name, wildcard or blank is not.
    pub fn parse(value: &str) -> Option<Self> {
        if value.trim() == "*" {
            return Some(Self::Any);
        }
        let origins: Vec<String> = value
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(parse_origin)
            .collect::<Option<_>>()?;
        (!origins.is_empty()).then_some(Self::List(origins))
    }

    /// `origin` is the request's `Origin` header, `None` when it has none. A header that is
    /// present but not a visible-ASCII origin is on no list: denied, unless any origin is
    /// allowed (then the answer is `*`, which never echoes it).
    pub fn check(&self, origin: Option<&str>) -> OriginCheck {
        let Some(origin) = origin else {
            return OriginCheck::NoOrigin;
        };
        match self {
            Self::Any => OriginCheck::Allowed { allow_origin: "*".into(), vary: false },
            // Origins are case-insensitive in scheme and host; browsers send them lowercase.
            Self::List(list)
                if is_visible_ascii(origin) && list.iter().any(|o| o.eq_ignore_ascii_case(origin)) =>
            {
                OriginCheck::Allowed { allow_origin: origin.to_string(), vary: true }
            }
            Self::List(_) => OriginCheck::Denied,
        }
    }
}

/// What a header value may hold to be echoed back: visible ASCII, no space or control.
fn is_visible_ascii(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic())
}

/// One configured origin, as browsers serialize it; `None` if it is not `scheme://host[:port]`.
fn parse_origin(entry: &str) -> Option<String> {
    if entry.chars().any(|c| c.is_whitespace() || c.is_control() || c == '*') {
        return None;
    }
    let url = crate::config::parse_absolute_url(entry.trim_end_matches('/'))?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    plain.then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_star_and_lists() {
        assert_eq!(AllowedOrigins::parse(" * "), Some(AllowedOrigins::Any));
        assert_eq!(
            AllowedOrigins::parse("https://A.example/, http://localhost:8080"),
            Some(AllowedOrigins::List(vec!["https://a.example".into(), "http://localhost:8080".into()]))
        );
        for bad in [
            "",
            " , ",
            "a.example",
            "https://",
            "https:///",
            "https:a.example",
            "https:///a.example",
            "https://a.example/path",
            "https://*.a.example",
            "https://a.example?x=1",
            "https://a.example#x",
            "https://user@a.example",
            "https://user:pw@a.example",
            "https://a b.example",
            "https://a\n.example",
            "ftp://a.example",
            "https://a.example, not an origin",
            "null",
        ] {
            assert_eq!(AllowedOrigins::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn keeps_origins_in_the_form_browsers_send() {
        assert_eq!(
            AllowedOrigins::parse("HTTPS://App.Example:443/, http://[::1]:8080, https://bücher.example"),
            Some(AllowedOrigins::List(vec![
                "https://app.example".into(),
                "http://[::1]:8080".into(),
                "https://xn--bcher-kva.example".into(),
            ]))
        );
    }

    #[test]
    fn an_unreadable_origin_is_on_no_list() {
        let list = AllowedOrigins::parse("https://a.example").unwrap();
        for unreadable in [
            "https://ä.example",
            "https://a.example\u{0}",
            "https://a.example\r\nX-Evil: 1",
            " https://a.example",
            "https://a.example, https://a.example",
            "",
            "\u{7f}",
        ] {
            assert_eq!(list.check(Some(unreadable)), OriginCheck::Denied, "{unreadable:?}");
            assert_eq!(
                AllowedOrigins::Any.check(Some(unreadable)),
                OriginCheck::Allowed { allow_origin: "*".into(), vary: false },
                "{unreadable:?}"
            );
        }
    }

    #[test]
    fn echoes_listed_origin_and_denies_others() {
        let list = AllowedOrigins::parse("https://a.example").unwrap();
        assert_eq!(
            list.check(Some("https://a.example")),
            OriginCheck::Allowed { allow_origin: "https://a.example".into(), vary: true }
        );
        assert_eq!(list.check(Some("https://evil.example")), OriginCheck::Denied);
        assert_eq!(list.check(None), OriginCheck::NoOrigin);
        assert_eq!(
            AllowedOrigins::Any.check(Some("https://x.example")),
            OriginCheck::Allowed { allow_origin: "*".into(), vary: false }
        );
    }
}
