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
    /// `None` when the value holds something that is not an origin.
    pub fn parse(value: &str) -> Option<Self> {
        if value.trim() == "*" {
            return Some(Self::Any);
        }
        let origins: Vec<String> = value
            .split(',')
            .map(|origin| origin.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|origin| !origin.is_empty())
            .collect();
        let valid = |origin: &String| {
            let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            rest.is_some_and(|host| !host.is_empty() && !host.contains(['/', ' ', '*']))
        };
        (!origins.is_empty() && origins.iter().all(valid)).then_some(Self::List(origins))
    }

    pub fn check(&self, origin: Option<&str>) -> OriginCheck {
        let Some(origin) = origin else {
            return OriginCheck::NoOrigin;
        };
        match self {
            Self::Any => OriginCheck::Allowed { allow_origin: "*".into(), vary: false },
            // Origins are case-insensitive in scheme and host; browsers send them lowercase.
            Self::List(list) if list.iter().any(|o| o.eq_ignore_ascii_case(origin)) => {
                OriginCheck::Allowed { allow_origin: origin.to_string(), vary: true }
            }
            Self::List(_) => OriginCheck::Denied,
        }
    }
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
        for bad in ["", " , ", "a.example", "https://", "https://a.example/path", "https://*.a.example"] {
            assert_eq!(AllowedOrigins::parse(bad), None, "{bad:?}");
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
