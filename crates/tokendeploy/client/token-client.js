// A token client for a tokendeploy token server (`tokendeploy serve` or the invoke URL `up`
// printed). No build step, no dependency: include it with a <script> tag.
//
//   const source = new TokenSource({ url, identity, room, bearer, onToken, onError });
//   source.start();   // fetches a token, then refreshes it before it expires
//
// `onToken(token)` is called with every token, the first one and each refresh: hand the first
// to the realtime SDK (`initializeToken(token.access_token, refresh)`) and the next ones to its
// `updateToken`. `onError(message)` gets a sentence a person can act on.

/** What went wrong, in words a person can act on. */
function explainTokenError(status, body, pageOrigin) {
  const detail = body && body.message ? ` (${body.message})` : "";
  switch (status) {
    case 0:
      return "The token server could not be reached, or it refused this page's origin " +
        `(${pageOrigin}) without saying why (CORS). Check the URL and ALLOWED_ORIGINS.`;
    case 400:
      return `The request was not understood${detail}.`;
    case 401:
      return `You are not signed in, or your sign-in has expired: sign in again${detail}.`;
    case 403:
      return body && body.error === "origin_not_allowed"
        ? `This page's origin (${pageOrigin}) may not get tokens: add it to ALLOWED_ORIGINS.`
        : `Not allowed${detail}.`;
    case 502:
      return `The token provider refused or failed; the server's key or secret may be wrong${detail}.`;
    case 503:
    case 504:
      return `The token provider is not answering; try again in a moment${detail}.`;
    default:
      return `The token server answered ${status}${detail}.`;
  }
}

/** Fetches one token: resolves to {access_token, refresh_token?, expires_in?}. */
async function fetchAccessToken(url, { identity, room, bearer } = {}) {
  const target = new URL(url, location.href);
  if (identity) target.searchParams.set("identity", identity);
  if (room) target.searchParams.set("room", room);
  const headers = { Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(target, { method: "GET", headers });
  } catch (networkOrCors) {
    throw new Error(explainTokenError(0, null, location.origin));
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(explainTokenError(response.status, body, location.origin));
  return body;
}

/** The identity a token names, when it is a JWT that says (Twilio, LiveKit); else null. */
function tokenIdentity(accessToken) {
  try {
    const payload = accessToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(decodeURIComponent(escape(atob(payload))));
    return (claims.grants && claims.grants.identity) || claims.sub || null;
  } catch {
    return null;
  }
}

/** Keeps a fresh token: refreshes it at 80% of its lifetime (at least 5 s before expiry). */
class TokenSource {
  constructor({ url, identity, room, bearer, onToken, onError }) {
    Object.assign(this, { url, identity, room, bearer, onToken, onError, timer: null });
  }

  async start() {
    clearTimeout(this.timer);
    try {
      const { identity, room, bearer } = this;
      const token = await fetchAccessToken(this.url, { identity, room, bearer });
      token.received_at = Date.now();
      this.onToken(token);
      if (typeof token.expires_in === "number") {
        const lifetime = token.expires_in * 1000;
        const wait = Math.max(1000, Math.min(lifetime * 0.8, lifetime - 5000));
        this.timer = setTimeout(() => this.start(), wait);
      }
    } catch (error) {
      this.onError(error.message);
    }
  }

  stop() {
    clearTimeout(this.timer);
  }
}
