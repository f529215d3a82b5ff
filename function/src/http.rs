//! What the function's outgoing calls (token API, key set, Secrets Manager) share.

/// Why [`read_capped`] returned no body.
pub(crate) enum CappedReadError {
    /// The body is larger than the cap.
    TooLarge,
    /// The connection broke, or the client's timeout struck, while the body came in.
    Transport(reqwest::Error),
}

/// The body, read as it streams in, up to `cap` bytes: a larger one is refused as soon as it is
/// known to be larger, without reading (or waiting for) the rest.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, CappedReadError> {
    if response.content_length().is_some_and(|length| length > cap as u64) {
        return Err(CappedReadError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(CappedReadError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(CappedReadError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
