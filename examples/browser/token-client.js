// Fetches a short-lived access token from a tokendeploy token server.
// Resolves to {access_token, refresh_token?, expires_in?}; rejects with the server's message.
async function fetchAccessToken(invokeUrl) {
  const response = await fetch(invokeUrl, { method: "GET", headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${response.status} ${body.error ?? "error"}: ${body.message ?? response.statusText}`);
  }
  return body;
}
