// The tutorial's token function, written from its description: the baseline function-bench
// runs beside the Rust function, under the same Runtime API harness and the same upstream.
// Like the tutorial's, it asks the client-credentials endpoint with axios on every request;
// with CACHE_TOKEN=1 it keeps the token until a minute before it expires, as ours does, so
// warm latencies can also be compared like for like.
const axios = require("axios");

let cached; // { token, expiresAt }

async function fetchToken() {
  const credentials = Buffer.from(
    `${process.env.CONSUMER_KEY}:${process.env.CONSUMER_SECRET}`,
  ).toString("base64");
  const answer = await axios.post(
    process.env.TOKEN_URL,
    "grant_type=client_credentials&expires_in=3600",
    {
      headers: {
        Authorization: `Basic ${credentials}`,
        "Content-Type": "application/x-www-form-urlencoded",
      },
    },
  );
  return {
    token: answer.data.access_token,
    expiresAt: Date.now() + answer.data.expires_in * 1000,
  };
}

exports.handler = async () => {
  if (process.env.CACHE_TOKEN !== "1" || !cached || cached.expiresAt - 60_000 < Date.now()) {
    cached = await fetchToken();
  }
  return {
    statusCode: 200,
    headers: {
      "Access-Control-Allow-Origin": "*",
      "Content-Type": "application/json",
    },
    body: JSON.stringify({
      access_token: cached.token,
      expires_in: Math.round((cached.expiresAt - Date.now()) / 1000),
    }),
  };
};
