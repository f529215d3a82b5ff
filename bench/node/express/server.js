// The tutorial's local token server, written from its description: Express on port 3001, one
// route that asks the client-credentials endpoint for a token with axios and passes it on, with
// CORS. The baseline serve-bench runs beside `tokendeploy serve`, same upstream, same machine.
// With CACHE_TOKEN=1 it keeps the token until a minute before it expires, as ours does.
const express = require("express");
const axios = require("axios");

const app = express();
let cached; // { token, expiresAt }

async function fetchToken() {
  const answer = await axios.post(process.env.TOKEN_URL, "grant_type=client_credentials", {
    auth: { username: process.env.CONSUMER_KEY, password: process.env.CONSUMER_SECRET },
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  return { token: answer.data.access_token, expiresAt: Date.now() + answer.data.expires_in * 1000 };
}

app.get("/token", async (req, res) => {
  try {
    if (process.env.CACHE_TOKEN !== "1" || !cached || cached.expiresAt - 60_000 < Date.now()) {
      cached = await fetchToken();
    }
    res.set("Access-Control-Allow-Origin", "*");
    res.set("Cache-Control", "no-store");
    res.json({
      access_token: cached.token,
      expires_in: Math.round((cached.expiresAt - Date.now()) / 1000),
    });
  } catch (error) {
    res.status(502).json({ error: "upstream_error" });
  }
});

app.listen(Number(process.env.PORT ?? 3001), "127.0.0.1");
